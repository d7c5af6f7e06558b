"""An agent's own `contextWindow` (CONTRACT §4 v2): 1,000–10,000,000 tokens or null, kept, cleared and carried."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.sidecar_client import Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import demo_config, make_agent, make_room

sidecar = chat_setup.sidecar  # one NDJSON sidecar per test

INVALID_PARAMS = -32602


def _agent(sidecar: Sidecar, **extra: Any) -> dict[str, Any]:
    return make_agent(sidecar, "Ollie", demo_config(sidecar), "demo", **extra)


def test_an_agent_without_a_context_window_has_null_and_one_with_it_keeps_it(sidecar: Sidecar) -> None:
    assert _agent(sidecar)["contextWindow"] is None
    agent = make_agent(sidecar, "Wide", demo_config(sidecar), "demo", contextWindow=32768)
    assert agent["contextWindow"] == 32768
    assert sidecar.call("agents:get", {"id": agent["id"]})["contextWindow"] == 32768
    assert [a["contextWindow"] for a in sidecar.call("agents:list")] == [None, 32768]


def test_update_sets_the_window_at_either_end_of_its_range_and_null_clears_it(sidecar: Sidecar) -> None:
    agent = _agent(sidecar)
    for value in (1000, 10_000_000, None):
        updated = sidecar.call("agents:update", {"id": agent["id"], "contextWindow": value})
        assert updated["contextWindow"] == value
        assert sidecar.call("agents:get", {"id": agent["id"]})["contextWindow"] == value


def test_an_update_of_another_field_leaves_the_window_alone(sidecar: Sidecar) -> None:
    agent = _agent(sidecar, contextWindow=4096)
    assert sidecar.call("agents:update", {"id": agent["id"], "name": "Renamed"})["contextWindow"] == 4096


@pytest.mark.parametrize("value", [999, 10_000_001, 0, -1, 8192.5, "8192", True])
def test_a_window_outside_its_range_or_not_an_integer_is_refused_and_changes_nothing(
    sidecar: Sidecar, value: Any
) -> None:
    agent = _agent(sidecar, contextWindow=2048)
    error = sidecar.call_error("agents:update", {"id": agent["id"], "contextWindow": value})
    assert (error.code, error.data["field"]) == (INVALID_PARAMS, "contextWindow")
    assert sidecar.call("agents:get", {"id": agent["id"]}) == agent
    error = sidecar.call_error("agents:create", {**_create_params(sidecar), "contextWindow": value})
    assert (error.code, error.data["field"]) == (INVALID_PARAMS, "contextWindow")
    assert len(sidecar.call("agents:list")) == 1


def _create_params(sidecar: Sidecar) -> dict[str, Any]:
    return {"name": "Other", "llmConfigId": demo_config(sidecar)["id"], "model": "demo",
            "roleId": sidecar.call("roles:list")[0]["id"],
            "personalityId": sidecar.call("personalities:list")[0]["id"]}  # fmt: skip


def test_an_exported_conversation_carries_the_window_to_the_agent_an_import_elsewhere_creates(
    spawn_sidecar: Callable[..., Sidecar], tmp_path: Path
) -> None:
    source = spawn_sidecar(tmp_path / "source")
    room = make_room(source, [_agent(source, contextWindow=65536)], title="Local model")
    exported = source.call("conversations:export", {"id": room.conversation_id, "format": "json"})["content"]
    assert source.stop() == 0

    target = spawn_sidecar(tmp_path / "target")
    imported = target.call("conversations:import", {"content": exported})
    [seat] = target.call("conversationAgents:list", {"conversationId": imported["id"]})
    assert target.call("agents:get", {"id": seat["agentId"]})["contextWindow"] == 65536
