"""Versions over stdio (CONTRACT §5d): chat:regenerate, a re-run trigger, selecting a version, and a crash in the
middle of a regenerate."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fake_provider import FakeProvider
from tests.sidecar_client import Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import Room, ask, assert_well_formed_updates, fake_config, messages, room_with

fake, sidecar = chat_setup.fake, chat_setup.sidecar  # the shared fixtures


def _regenerate(sidecar: Sidecar, room: Room, name: str, user_message_id: str) -> dict[str, Any]:
    return sidecar.call("chat:regenerate", {"conversationId": room.conversation_id,
                                            "conversationAgentId": room.ca(name), "userMessageId": user_message_id})


def _replies(sidecar: Sidecar, room: Room, **extra: Any) -> list[dict[str, Any]]:
    rows = sidecar.call("messages:list", {"conversationId": room.conversation_id, **extra})
    return [row for row in rows if row["role"] == "agent"]


def test_a_regenerated_reply_becomes_the_active_version_and_the_old_one_is_kept(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Ann", config, "gpt-ok"), ("Ben", config, "gpt-ok")])
    turn = ask(sidecar, room, "Hello")
    first = next(row for row in _replies(sidecar, room) if row["conversationAgentId"] == room.ca("Ann"))
    assert (first["version"], first["versionCount"]) == (1, 1)
    result = _regenerate(sidecar, room, "Ann", turn["userMessageId"])
    assert result["status"] == "complete"
    updates = [u for u in sidecar.updates(room.ca("Ann")) if u["userMessageId"] == turn["userMessageId"]]
    last_run = max(i for i, u in enumerate(updates) if u["status"] == "thinking")  # the regenerate's updates
    assert assert_well_formed_updates(updates[last_run:])["version"] == 2
    listed = {row["conversationAgentId"]: row for row in _replies(sidecar, room)}
    assert len(listed) == 2  # still one reply per agent: only active versions are listed
    ann = listed[room.ca("Ann")]
    assert (ann["id"], ann["version"], ann["versionCount"]) == (result["messageId"], 2, 2)
    versions = sidecar.call("messages:versions", {"id": ann["id"]})
    assert [v["version"] for v in versions] == [1, 2] and versions[0]["id"] == first["id"]
    assert len(_replies(sidecar, room, allVersions=True)) == 3
    # The context of the next call uses the active version.
    context = sidecar.call("buildAgentContext", {"conversationId": room.conversation_id, "agentId": room.ca("Ann")})
    own = [m["content"] for m in context["messages"] if m["role"] == "assistant"]
    assert own == [ann["content"]]  # not both versions merged into one turn
    selected = sidecar.call("messages:selectVersion", {"id": first["id"]})
    assert selected["id"] == first["id"]
    assert {row["id"] for row in _replies(sidecar, room)} >= {first["id"]}


def test_a_regenerate_that_fails_keeps_the_active_version_and_saves_no_error_notice(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Ann", config, "gpt-ok")])
    turn = ask(sidecar, room, "Hello")
    before = messages(sidecar, room)
    sidecar.call("agents:update", {"id": room.members["Ann"]["agentId"], "model": "gpt-err-401"})
    result = _regenerate(sidecar, room, "Ann", turn["userMessageId"])
    assert (result["status"], result["errorType"]) == ("error", "auth")
    assert messages(sidecar, room) == before  # no new version, no "Agent Ann: …" notice
    assert sidecar.call("messages:versions", {"id": _replies(sidecar, room)[0]["id"]})[0]["version"] == 1


def test_regenerate_needs_a_complete_reply_and_refuses_an_agent_that_is_running(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Ann", config, "gpt-err-401")])
    turn = ask(sidecar, room, "Hello")
    refused = sidecar.call_error("chat:regenerate", {"conversationId": room.conversation_id,
                                                     "conversationAgentId": room.ca("Ann"),
                                                     "userMessageId": turn["userMessageId"]})
    assert refused.kind == "conflict"


def test_re_running_a_trigger_makes_each_agents_new_reply_a_new_version(sidecar: Sidecar, fake: FakeProvider) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Ann", config, "gpt-ok"), ("Ben", config, "gpt-ok")])
    turn = ask(sidecar, room, "First wording")
    sidecar.call("messages:update", {"id": turn["userMessageId"], "content": "Second wording"})
    again = sidecar.call("processUserMessage", {"conversationId": room.conversation_id,
                                                "userMessageId": turn["userMessageId"]})
    assert again["successfulAgents"] == 2
    replies = _replies(sidecar, room)
    assert [(r["version"], r["versionCount"]) for r in replies] == [(2, 2), (2, 2)]
    assert all("Second wording" in r["content"] for r in replies)  # the edited text reached the context


def test_a_crash_during_a_regenerate_leaves_the_old_version_active(
    spawn_sidecar: Callable[..., Sidecar], fake: FakeProvider, tmp_path: Path
) -> None:
    first = spawn_sidecar(tmp_path / "data")
    config = fake_config(first, fake, "openai")
    room = room_with(first, [("Ann", config, "gpt-ok")])
    turn = ask(first, room, "Hello")
    original = _replies(first, room)[0]
    first.call("agents:update", {"id": room.members["Ann"]["agentId"], "model": "gpt-words-100000-pace-20"})
    first.request("chat:regenerate", {"conversationId": room.conversation_id, "conversationAgentId": room.ca("Ann"),
                                      "userMessageId": turn["userMessageId"]})
    first.wait_notification(lambda n: n["method"] == "agent:update" and n["params"]["status"] == "streaming")
    first.proc.kill()  # SIGKILL: no cleanup of any kind
    assert first.wait_exit() == -9
    second = spawn_sidecar(tmp_path / "data")
    [shown] = _replies(second, room)
    assert (shown["id"], shown["content"], shown["status"]) == (original["id"], original["content"], "complete")
    statuses = [v["status"] for v in second.call("messages:versions", {"id": original["id"]})]
    assert statuses[0] == "complete" and all(s != "streaming" for s in statuses)
