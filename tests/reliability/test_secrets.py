"""API keys never leave the sidecar: a canary key through every path that carries one, and providers that echo it
back in errors, must never reach stdout (responses and notifications), stderr, the --log-file, or the database files
(CONTRACT §4 llmConfigs, §6; SECURITY.md). The one text the sidecar never alters is a model's reply: a provider
that writes the key into it gets it saved and shown as written, and still never logged.

The canaries are not key-shaped (no `sk-` prefix), so what keeps them out is the registered-secret redaction and
the sidecar's own discipline, not the key-pattern fallback.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability import tally
from tests.reliability.echoing_provider import EchoingProvider
from tests.reliability.wire import leak_forms
from tests.sidecar_client import Sidecar
from tests.stdio.chat_setup import ask, make_agent, make_room, messages, result_for, streamed_text, turn_updates


def _canary(label: str) -> str:
    return f"canary{label}{uuid.uuid4().hex}"


@pytest.fixture
def echoing() -> Iterator[EchoingProvider]:
    with EchoingProvider() as server:
        yield server


def _places(sidecar: Sidecar, log_file: Path) -> dict[str, bytes]:
    """Every place a key could land, read after the process has exited."""
    places = {"stdout": bytes(sidecar.stdout_bytes), "stderr": "\n".join(sidecar.stderr_lines).encode(),
              "log file": log_file.read_bytes()}
    for path in sorted(sidecar.data_dir.glob("chat-sidecar.sqlite3*")):
        places[path.name] = path.read_bytes()
    return places


def _assert_no_leak(places: dict[str, bytes], canaries: list[str]) -> None:
    leaks = [(canary, place) for canary in canaries for place, data in places.items()
             for form in leak_forms(canary) if form in data]
    tally.add("security: canary × place checks", len(canaries) * len(places))
    assert leaks == [], f"keys leaked: {leaks}"


def test_a_canary_key_through_every_write_path_and_echoing_providers_never_leaves_the_process(
    spawn_sidecar: Callable[..., Sidecar], echoing: EchoingProvider, tmp_path: Path
) -> None:
    log_file = tmp_path / "sidecar.log"
    sidecar = spawn_sidecar(args=("--secret-store", "memory", "--log-file", str(log_file)))
    canaries = [_canary(label) for label in ("create", "update", "set", "session", "rejected", "anthropic")]
    openai = sidecar.call("llmConfigs:create", {"customName": "echo openai", "provider": "openai",
                                                "baseUrl": f"{echoing.base_url}/v1", "apiKey": canaries[0]})
    sidecar.call("llmConfigs:update", {"id": openai["id"], "apiKey": canaries[1]})
    sidecar.call("llmConfigs:setApiKey", {"id": openai["id"], "apiKey": canaries[2]})
    sidecar.call("llmConfigs:setApiKey", {"id": openai["id"], "apiKey": canaries[3], "persist": False})
    anthropic = sidecar.call("llmConfigs:create", {"customName": "echo anthropic", "provider": "anthropic",
                                                   "baseUrl": echoing.base_url, "apiKey": canaries[5]})
    _rejected_requests_carrying_a_key(sidecar, openai, canaries[4])

    models = ("leak-401", "leak-400", "leak-500", "leak-stream")
    agents = [make_agent(sidecar, f"{provider['provider'][:2]}{model}", provider, f"m-{model}")
              for provider in (openai, anthropic) for model in models]
    room = make_room(sidecar, agents, "leaks")
    result = ask(sidecar, room, "Please fail loudly")
    for agent in agents:
        outcome = result_for(result, room.ca(agent["name"]))
        assert outcome["status"] == "error" and "canary" not in outcome["error"], outcome
    tally.add("security: provider answers echoing the key", len(agents))
    assert sidecar.stop() == 0
    _assert_no_leak(_places(sidecar, log_file), canaries)


def _rejected_requests_carrying_a_key(sidecar: Sidecar, config: dict[str, Any], canary: str) -> None:
    """Refusals must not quote the key they refused."""
    cases = [
        ("llmConfigs:create", {"customName": "too long", "provider": "openai", "apiKey": canary * 20}),
        ("llmConfigs:create", {"customName": "echo openai", "provider": "openai", "apiKey": canary}),  # duplicate
        ("llmConfigs:setApiKey", {"id": "no-such-config", "apiKey": canary}),
        ("llmConfigs:setApiKey", {"id": config["id"], "apiKey": canary, "unexpected": canary}),
        ("llmConfigs:update", {"id": config["id"], "apiKey": 42, "customName": canary}),
        ("llmConfigs:setApiKey", {"id": config["id"], "apiKey": canary, "persist": "yes"}),
    ]
    for method, params in cases:
        error = sidecar.call_error(method, params)
        assert canary not in str(error.data) and canary not in error.message, (method, error)
    tally.add("security: rejected requests carrying a key", len(cases))


def test_a_keychain_that_refuses_the_key_fails_the_request_without_quoting_the_key(
    spawn_sidecar: Callable[..., Sidecar], tmp_path: Path
) -> None:
    log_file = tmp_path / "sidecar.log"
    sidecar = spawn_sidecar(args=("--secret-store", "keyring", "--log-file", str(log_file)),
                            env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    canary = _canary("keychain")
    error = sidecar.call_error("llmConfigs:create", {"customName": "k", "provider": "openai", "apiKey": canary})
    assert error.kind == "secret_storage"
    assert [c["customName"] for c in sidecar.call("llmConfigs:list") if c["customName"] == "k"] == []
    assert sidecar.stop() == 0
    _assert_no_leak(_places(sidecar, log_file), [canary])


def test_a_provider_reply_that_quotes_the_key_is_kept_as_written_and_the_key_still_never_reaches_a_log(
    spawn_sidecar: Callable[..., Sidecar], echoing: EchoingProvider, tmp_path: Path
) -> None:
    """CONTRACT §4 (v2): a model's reply text is never altered by redaction. A key in a reply came from the provider
    it was sent to; cutting it out silently would change what the model said. Logs still never carry it."""
    log_file = tmp_path / "sidecar.log"
    sidecar = spawn_sidecar(args=("--secret-store", "memory", "--log-file", str(log_file)))
    canary = _canary("reply")
    config = sidecar.call("llmConfigs:create", {"customName": "echo", "provider": "openai",
                                                "baseUrl": f"{echoing.base_url}/v1", "apiKey": canary})
    room = make_room(sidecar, [make_agent(sidecar, "Parrot", config, "m-leak-reply")], "parrot")
    result = ask(sidecar, room, "Hi")  # its status is the engine's business (the stream has no finish_reason)
    written = f"Sure. Your key is {canary}, by the way."
    assert streamed_text(turn_updates(sidecar, result["userMessageId"], room.ca("Parrot"))) == written
    assert [m["content"] for m in messages(sidecar, room) if m["role"] == "agent"] == [written]
    assert sidecar.stop() == 0
    places = _places(sidecar, log_file)
    _assert_no_leak({name: places[name] for name in ("stderr", "log file")}, [canary])
