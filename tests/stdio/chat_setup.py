"""Shared set-up for the chat engine's stdio tests: llm configs on the fake server, agents, conversations, turns.

Everything goes through the sidecar's own methods, so the set-up is itself an end-to-end use of the data API.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fake_provider import FakeProvider
from tests.sidecar_client import Sidecar

API_KEY = "sk-test-CANARY-7f3a9c"  # searched for in every wire output: it must never come back
TERMINAL = frozenset({"complete", "error", "cancelled", "skipped"})


@pytest.fixture
def fake(fake_provider: FakeProvider) -> Iterator[FakeProvider]:
    """The session's fake server with an empty request log, no open gates and fresh flaky counters."""
    fake_provider.reset()
    yield fake_provider


@pytest.fixture
def sidecar(spawn_sidecar: Callable[..., Sidecar]) -> Iterator[Sidecar]:
    process = spawn_sidecar()
    yield process
    assert API_KEY.encode() not in bytes(process.stdout_bytes), "the API key reached stdout"
    assert process.unmatched == [], "a request was answered twice"


def fake_config(
    sidecar: Sidecar, fake: FakeProvider, provider: str, name: str | None = None, *, api_key: str | None = API_KEY
) -> dict[str, Any]:
    """An llm config pointing at the fake server (an OpenAI base URL includes /v1, an Anthropic one does not)."""
    base_url = fake.openai_base_url if provider == "openai" else fake.anthropic_base_url
    params: dict[str, Any] = {"customName": name or f"fake {provider}", "provider": provider, "baseUrl": base_url}
    if api_key is not None:
        params["apiKey"] = api_key
    return sidecar.call("llmConfigs:create", params)


def closed_port_config(sidecar: Sidecar) -> dict[str, Any]:
    """An OpenAI config whose base URL is a port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return sidecar.call(
        "llmConfigs:create",
        {"customName": "refused", "provider": "openai", "baseUrl": f"http://127.0.0.1:{port}/v1", "apiKey": API_KEY},
    )


def demo_config(sidecar: Sidecar) -> dict[str, Any]:
    return next(c for c in sidecar.call("llmConfigs:list") if c["provider"] == "demo")


def make_agent(sidecar: Sidecar, name: str, config: dict[str, Any], model: str, **extra: Any) -> dict[str, Any]:
    role = sidecar.call("roles:list")[0]
    personality = sidecar.call("personalities:list")[0]
    params = {"name": name, "llmConfigId": config["id"], "model": model, "roleId": role["id"],
              "personalityId": personality["id"], **extra}
    return sidecar.call("agents:create", params)


@dataclass(frozen=True)
class Room:
    """A conversation and its conversation agents, by agent name."""

    conversation_id: str
    members: dict[str, dict[str, Any]]  # agent name → conversationAgents row

    def ca(self, name: str) -> str:
        return self.members[name]["id"]

    def name_of(self, conversation_agent_id: str) -> str:
        return next(name for name, row in self.members.items() if row["id"] == conversation_agent_id)


def make_room(sidecar: Sidecar, agents: list[dict[str, Any]], title: str = "test") -> Room:
    conversation = sidecar.call("conversations:create", {"title": title})
    add = {"conversationId": conversation["id"]}
    members = {a["name"]: sidecar.call("conversationAgents:add", {**add, "agentId": a["id"]}) for a in agents}
    return Room(conversation["id"], members)


def room_with(sidecar: Sidecar, specs: list[tuple[str, dict[str, Any], str]], **extra: Any) -> Room:
    """A conversation of agents given as (name, llm config, model)."""
    return make_room(sidecar, [make_agent(sidecar, name, config, model, **extra) for name, config, model in specs])


def ask(sidecar: Sidecar, room: Room, content: str) -> dict[str, Any]:
    """One whole turn; its notifications have all arrived when this returns (the response comes last)."""
    return sidecar.call("processUserMessage", {"conversationId": room.conversation_id, "content": content})


def messages(sidecar: Sidecar, room: Room) -> list[dict[str, Any]]:
    return sidecar.call("messages:list", {"conversationId": room.conversation_id})


def turn_updates(sidecar: Sidecar, user_message_id: str, conversation_agent_id: str) -> list[dict[str, Any]]:
    return [u for u in sidecar.updates(conversation_agent_id) if u["userMessageId"] == user_message_id]


def result_for(result: dict[str, Any], conversation_agent_id: str) -> dict[str, Any]:
    return next(r for r in result["agentResults"] if r["conversationAgentId"] == conversation_agent_id)


def frames(sidecar: Sidecar) -> list[dict[str, Any]]:
    """Every frame the sidecar wrote so far, in the order it wrote them (ndjson framing)."""
    return [json.loads(line) for line in bytes(sidecar.stdout_bytes).splitlines() if line.strip()]


def assert_well_formed_updates(updates: list[dict[str, Any]]) -> dict[str, Any]:
    """`thinking` first, seq 1, 2, 3…, exactly one terminal update and it is the last; returns that one."""
    assert updates, "the agent sent no update"
    assert updates[0]["status"] == "thinking"
    assert [u["seq"] for u in updates] == list(range(1, len(updates) + 1))
    terminal = [u for u in updates if u["status"] in TERMINAL]
    assert len(terminal) == 1 and terminal[0] is updates[-1], [u["status"] for u in updates]
    return updates[-1]


def streamed_text(updates: list[dict[str, Any]]) -> str:
    return "".join(u["delta"] for u in updates if u["status"] == "streaming")


def requests_for(fake: FakeProvider, model: str) -> list[Any]:
    return [r for r in fake.requests if r.model == model]
