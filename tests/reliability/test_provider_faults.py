"""Every provider fault, through the real OpenAI and Anthropic SDKs against the fake server, in turns that also
hold one healthy agent (CONTRACT §5 "Failures").

The sidecar always streams, so "streaming and non-streaming" becomes: faults before the first token (HTTP
statuses, a hang past timeoutMs, a refused connection) and faults after some text (a reset, a malformed SSE line,
the provider's in-stream error event). Each faulty agent gets its own llm config, so the four-calls-per-config
limit never serialises the matrix, and all faults of one provider share one turn.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fake_provider import FakeProvider
from tests.reliability import tally
from tests.reliability.wire import stderr_records
from tests.sidecar_client import Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import API_KEY, ask, fake_config, make_agent, make_room, result_for, turn_updates

fake = chat_setup.fake

NOTICE = re.compile(r"^Agent ([^:]+): (.+)$", re.S)
INTERNALS = re.compile(r"\b\w*(Error|Exception)\b|https?:|127\.0\.0\.1|Traceback|\b(openai|anthropic|httpx)\b", re.I)


@dataclass(frozen=True)
class Fault:
    model: str  # behaviour tokens for the fake ("refused" means: a config on a closed port)
    error_type: str
    retryable: bool
    status: int | None
    after_text: bool = False
    anthropic_status: int | None = None  # Anthropic's in-stream error event names a type the sidecar maps to a status


FAULTS: dict[str, Fault] = {
    "E401": Fault("err-401", "auth", False, 401),
    "E403": Fault("err-403", "auth", False, 403),
    "E404": Fault("err-404", "configuration", False, 404),
    "E400": Fault("err-400", "validation", False, 400),
    "E413": Fault("err-413", "validation", False, 413),
    "E422": Fault("err-422", "validation", False, 422),
    "E429": Fault("err-429", "rate_limit", True, 429),
    "E429RetryAfter": Fault("err-429-retryafter-1", "rate_limit", True, 429),
    "E500": Fault("err-500", "provider", True, 500),
    "E502": Fault("err-502", "provider", True, 502),
    "E503": Fault("err-503", "provider", True, 503),
    "E504": Fault("err-504", "provider", True, 504),
    "E529": Fault("err-529", "provider", True, 529),
    "Hang": Fault("hang", "timeout", True, None),
    "Refused": Fault("refused", "network", True, None),
    "Reset": Fault("words-30-reset", "network", True, None, after_text=True),
    "Malformed": Fault("words-30-malformed", "provider", True, None, after_text=True),
    "Midstream": Fault("words-30-midstream", "provider", True, None, after_text=True, anthropic_status=529),
}


def _config(sidecar: Sidecar, fake: FakeProvider, provider: str, fault: Fault, name: str) -> dict[str, Any]:
    if fault.model != "refused":
        return fake_config(sidecar, fake, provider, name)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}" + ("/v1" if provider == "openai" else "")
    params = {"customName": name, "provider": provider, "baseUrl": base_url, "apiKey": API_KEY}
    return sidecar.call("llmConfigs:create", params)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_every_fault_is_classified_explained_and_logged_and_never_touches_the_healthy_agent(
    spawn_sidecar: Callable[..., Sidecar], fake: FakeProvider, provider: str
) -> None:
    sidecar = spawn_sidecar()
    # Never all digits: the fake reads a number right after `midstream` as the in-stream error's status, so a
    # tag like "123456" (6 % of uuid prefixes) turned Anthropic's overloaded_error (529) into api_error (500).
    tag = f"t{uuid.uuid4().hex[:6]}"
    agents = [make_agent(sidecar, "Healthy", fake_config(sidecar, fake, provider, "healthy"), f"m-words-6-{tag}")]
    for name, fault in FAULTS.items():
        config = _config(sidecar, fake, provider, fault, f"{name} config")
        agents.append(make_agent(sidecar, name, config, f"m-{fault.model}-{tag}", timeoutMs=1000))
    room = make_room(sidecar, agents, f"faults {provider}")
    result = ask(sidecar, room, "Fault matrix")
    user_id = result["userMessageId"]
    rows = sidecar.call("messages:list", {"conversationId": room.conversation_id})
    healthy = result_for(result, room.ca("Healthy"))
    assert healthy["status"] == "complete", healthy
    assert (result["successfulAgents"], result["failedAgents"]) == (1, len(FAULTS))

    expected_notices: dict[str, str] = {}
    for name, fault in FAULTS.items():
        outcome = result_for(result, room.ca(name))
        final = turn_updates(sidecar, user_id, room.ca(name))[-1]
        got = (outcome["status"], outcome["errorType"], outcome["retryable"])
        assert got == ("error", fault.error_type, fault.retryable), name
        assert (final["status"], final["errorType"], final["retryable"]) == got[0:3], name
        notice = next(r for r in rows if r["id"] == outcome["messageId"])
        match = NOTICE.match(notice["content"])
        assert match and match.group(1) == name and match.group(2) == outcome["error"], notice["content"]
        _assert_friendly(match.group(2), fault)
        reply = [r for r in rows if r["conversationAgentId"] == room.ca(name) and r["role"] == "agent"]
        if fault.after_text:
            assert [r["status"] for r in reply] == ["error"] and reply[0]["content"], name
        else:
            assert reply == [], name
        expected_notices[name] = match.group(2)
        tally.add(f"faults: injected ({provider})")

    assert sidecar.stop() == 0  # stderr is complete once the process has exited
    _assert_logged(sidecar, room.conversation_id, provider, expected_notices, agents)


def _assert_friendly(text: str, fault: Fault) -> None:
    assert not INTERNALS.search(text), text
    assert API_KEY not in text
    assert not re.search(r"\b[1-5]\d\d\b", text), f"a status code in {text!r}"
    assert text[0].isupper() and text.rstrip().endswith("."), text


def _assert_logged(
    sidecar: Sidecar, conversation_id: str, provider: str, notices: dict[str, str], agents: list[dict[str, Any]]
) -> None:
    records = [r for r in stderr_records(sidecar) if r.get("msg") == "agent call failed"]
    for agent in agents[1:]:
        lines = [r for r in records if r.get("agentId") == agent["id"]]
        assert len(lines) == 1, f"{agent['name']}: {len(lines)} failure log lines"
        line, fault = lines[0], FAULTS[agent["name"]]
        assert (line["provider"], line["conversationId"]) == (provider, conversation_id)
        status = fault.anthropic_status if provider == "anthropic" and fault.anthropic_status else fault.status
        assert line["statusCode"] == status and line["safeMessage"] == notices[agent["name"]]
