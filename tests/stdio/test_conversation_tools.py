"""Editing, versions, search and conversation files over the real subprocess (CONTRACT §4 "More methods", §5d).

Versions are made in the data dir through the storage repository before the sidecar starts (the engine's
`chat:regenerate` makes them in use); everything else goes through the sidecar's own methods. Every result is
checked against schema/ by the client.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.ids import IdFactory
from storage.repositories import agents, conversation_agents, conversations, llm_configs, personalities, roles, turns
from storage.setup import open_database
from tests.sidecar_client import Sidecar
from tests.stdio.chat_setup import demo_config, make_agent, make_room

NOT_FOUND, VALIDATION, BUSY = -32010, -32012, -32014
UNKNOWN_ID = "01900000-0000-7000-8000-000000000000"
Spawn = Callable[..., Sidecar]


@pytest.fixture
def sidecar(spawn_sidecar: Spawn) -> Iterator[Sidecar]:
    process = spawn_sidecar()
    yield process
    assert process.unmatched == [], "a request was answered twice"


def _say(sidecar: Sidecar, conversation_id: str, content: str, role: str = "user") -> dict[str, Any]:
    return sidecar.call("messages:create", {"conversationId": conversation_id, "role": role, "content": content})


def _list(sidecar: Sidecar, conversation_id: str, **options: Any) -> list[dict[str, Any]]:
    return sidecar.call("messages:list", {"conversationId": conversation_id, **options})


# --- editing -------------------------------------------------------------------------------------------------------


def test_an_edited_message_is_listed_with_its_new_text_and_edited_at(sidecar: Sidecar) -> None:
    conversation = sidecar.call("conversations:create", {"title": "Edits"})["id"]
    first, second = _say(sidecar, conversation, "Helo"), _say(sidecar, conversation, "A note", role="system")
    edited = sidecar.call("messages:update", {"id": first["id"], "content": "Hello"})
    assert edited["content"] == "Hello" and edited["editedAt"] >= first["createdAt"]
    assert {k: v for k, v in edited.items() if k not in ("content", "editedAt")} == {
        k: v for k, v in first.items() if k not in ("content", "editedAt")
    }
    listed = _list(sidecar, conversation)
    assert [(m["content"], m["editedAt"]) for m in listed] == [("Hello", edited["editedAt"]), ("A note", None)]
    assert sidecar.call("messages:update", {"id": second["id"], "content": "A note"})["editedAt"] is None


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"content": "   "}, VALIDATION),
        ({"content": "bell \u0007"}, -32602),
        ({"content": ""}, -32602),
        ({"id": UNKNOWN_ID, "content": "x"}, NOT_FOUND),
    ],
)
def test_an_edit_follows_the_rules_of_create_and_changes_nothing_when_refused(
    sidecar: Sidecar, params: dict[str, Any], code: int
) -> None:
    conversation = sidecar.call("conversations:create", {})["id"]
    message = _say(sidecar, conversation, "Keep me")
    error = sidecar.call_error("messages:update", {"id": message["id"], **params})
    assert error.code == code
    assert _list(sidecar, conversation) == [message]


def test_a_reply_still_being_written_cannot_be_edited(sidecar: Sidecar) -> None:
    room = make_room(sidecar, [make_agent(sidecar, "Slowpoke", demo_config(sidecar), "demo-slow")])
    turn = sidecar.request("processUserMessage", {"conversationId": room.conversation_id, "content": "Take your time"})
    streaming = sidecar.wait_notification(
        lambda n: n["method"] == "agent:update" and n["params"]["status"] == "streaming"
    )["params"]
    error = sidecar.call_error("messages:update", {"id": streaming["messageId"], "content": "Mine now"})
    assert (error.code, error.kind) == (BUSY, "busy")
    assert sidecar.call("chat:cancel", {"conversationId": room.conversation_id})["cancelled"] == 1
    assert sidecar.response(turn)["result"]["cancelledAgents"] == 1
    settled = sidecar.call("messages:update", {"id": streaming["messageId"], "content": "Mine now"})
    assert (settled["status"], settled["content"]) == ("cancelled", "Mine now")


# --- versions ------------------------------------------------------------------------------------------------------


def _seed_versions(data_dir: Path) -> dict[str, str]:
    """A conversation whose agent reply has three versions (the second active), made through the repository."""
    ids = IdFactory()
    database = open_database(data_dir, ids)
    try:
        conversation = conversations.create_conversation(ids, {"title": "Versions"})["id"]
        agent = agents.create_agent(ids, {
            "name": "Ada", "model": "demo", "llmConfigId": llm_configs.list_llm_configs()[0]["id"],
            "roleId": roles.list_roles()[0]["id"], "personalityId": personalities.list_personalities()[0]["id"],
        })  # fmt: skip
        seat = conversation_agents.add_conversation_agent(ids, {"conversationId": conversation, "agentId": agent["id"]})
        trigger = turns.add_user_message(ids, conversation, "Name a fruit")
        made = []
        for text in ("Apple", "Banana", "Cherry"):
            reply = turns.create_reply(ids, conversation, seat["id"], trigger.id, text, made[0] if made else None)
            turns.finish_reply(reply.id, "complete", text, {"totalMs": 3}, "end")
            made.append(reply.id)
        turns.activate_version(made[1])
        later = turns.add_user_message(ids, conversation, "And a vegetable?")
    finally:
        database.close()
    return {"conversation": conversation, "trigger": trigger.id, "later": later.id,
            "v1": made[0], "v2": made[1], "v3": made[2]}  # fmt: skip


def test_versions_are_listed_selected_and_used_in_the_context(spawn_sidecar: Spawn, data_dir: Path) -> None:
    seeded = _seed_versions(data_dir)
    sidecar = spawn_sidecar(data_dir)
    conversation = seeded["conversation"]
    assert [(m["content"], m["version"], m["versionCount"]) for m in _list(sidecar, conversation)] == [
        ("Name a fruit", None, None), ("Banana", 2, 3), ("And a vegetable?", None, None)
    ]  # fmt: skip
    everything = _list(sidecar, conversation, allVersions=True)
    assert [(m["content"], m["active"]) for m in everything] == [
        ("Name a fruit", True), ("Apple", False), ("Banana", True), ("Cherry", False), ("And a vegetable?", True)
    ]  # fmt: skip
    versions = sidecar.call("messages:versions", {"id": seeded["v3"]})
    assert [(m["id"], m["version"], m["versionCount"]) for m in versions] == [
        (seeded["v1"], 1, 3), (seeded["v2"], 2, 3), (seeded["v3"], 3, 3)
    ]  # fmt: skip
    selected = sidecar.call("messages:selectVersion", {"id": seeded["v3"]})
    assert (selected["id"], selected["active"], selected["content"]) == (seeded["v3"], True, "Cherry")
    assert [m["content"] for m in _list(sidecar, conversation)] == ["Name a fruit", "Cherry", "And a vegetable?"]
    [seat] = sidecar.call("conversationAgents:list", {"conversationId": conversation})
    context = sidecar.call("buildAgentContext", {"conversationId": conversation, "agentId": seat["id"]})
    assert "Cherry" in json.dumps(context["messages"]) and "Banana" not in json.dumps(context["messages"])
    assert sidecar.stop() == 0


@pytest.mark.parametrize("method", ["messages:versions", "messages:selectVersion"])
def test_a_user_message_has_no_versions_and_an_unknown_id_is_not_found(
    spawn_sidecar: Spawn, data_dir: Path, method: str
) -> None:
    seeded = _seed_versions(data_dir)
    sidecar = spawn_sidecar(data_dir)
    error = sidecar.call_error(method, {"id": seeded["trigger"]})
    assert (error.code, error.kind) == (VALIDATION, "validation")
    assert sidecar.call_error(method, {"id": UNKNOWN_ID}).code == NOT_FOUND
    assert sidecar.stop() == 0


# --- search --------------------------------------------------------------------------------------------------------


def test_search_finds_active_versions_only_with_their_conversation_title(
    spawn_sidecar: Spawn, data_dir: Path
) -> None:
    seeded = _seed_versions(data_dir)
    sidecar = spawn_sidecar(data_dir)
    other = sidecar.call("conversations:create", {"title": "Shopping"})["id"]
    _say(sidecar, other, "Buy a banana and a fruit knife")
    hits = sidecar.call("messages:search", {"query": "banana"})
    assert [(h["message"]["content"], h["conversationTitle"]) for h in hits] == [
        ("Banana", "Versions"), ("Buy a banana and a fruit knife", "Shopping")
    ]  # fmt: skip
    assert sidecar.call("messages:search", {"query": "apple"}) == []  # an inactive version
    scoped = sidecar.call("messages:search", {"query": "fruit", "conversationId": other, "limit": 5})
    assert [h["message"]["conversationId"] for h in scoped] == [other]
    sidecar.call("conversations:delete", {"id": seeded["conversation"]})
    assert [h["conversationTitle"] for h in sidecar.call("messages:search", {"query": "banana"})] == ["Shopping"]
    assert sidecar.call_error("messages:search", {"query": "x", "conversationId": UNKNOWN_ID}).code == NOT_FOUND
    assert sidecar.call_error("messages:search", {"query": "x", "limit": 201}).code == -32602
    assert sidecar.stop() == 0


HOSTILE_WORDS = ['"', '""', "NEAR", "NEAR(", "AND", "OR", "NOT", "*", "-", "^", ":", "col:x", "(", ")", "😀", "..."]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.text(min_size=1, max_size=300)
    | st.lists(st.sampled_from(HOSTILE_WORDS) | st.text(max_size=3), min_size=1, max_size=10).map(" ".join)
    | st.sampled_from(["a", "x" * 10_000, "😀" * 2_500, '"' * 10_000])
)
def test_any_query_gets_a_list_never_an_error(sidecar: Sidecar, query: str) -> None:
    response = sidecar.response(sidecar.request("messages:search", {"query": query}))
    assert "result" in response and isinstance(response["result"], list), response.get("error")


# --- export and import ---------------------------------------------------------------------------------------------


def _comparable(sidecar: Sidecar, conversation_id: str) -> dict[str, Any]:
    """A conversation's rows with every id replaced by its position, so two copies compare equal."""
    rows = _list(sidecar, conversation_id, allVersions=True)
    seats = sidecar.call("conversationAgents:list", {"conversationId": conversation_id})
    position = {m["id"]: i for i, m in enumerate(rows)}
    seat_position = {s["id"]: i for i, s in enumerate(seats)}
    messages = [
        {**m, "id": None, "conversationId": None, "replyToId": position.get(m["replyToId"]),
         "conversationAgentId": seat_position.get(m["conversationAgentId"])}
        for m in rows
    ]  # fmt: skip
    conversation = {k: v for k, v in sidecar.call("conversations:get", {"id": conversation_id}).items() if k != "id"}
    return {
        "conversation": conversation,
        "seats": [{k: v for k, v in s.items() if k not in ("id", "conversationId")} for s in seats],
        "messages": messages,
    }


def test_an_export_imports_back_equal_except_ids(spawn_sidecar: Spawn, data_dir: Path) -> None:
    seeded = _seed_versions(data_dir)
    sidecar = spawn_sidecar(data_dir)
    conversation = seeded["conversation"]
    bob = make_agent(sidecar, "Bob", demo_config(sidecar), "demo")
    sidecar.call("conversationAgents:add", {"conversationId": conversation, "agentId": bob["id"], "enabled": False})
    result = sidecar.call("processUserMessage", {"conversationId": conversation, "content": "Quick, a berry?"})
    assert result["successfulAgents"] == 1
    sidecar.call("messages:update", {"id": seeded["later"], "content": "And a vegetable, please?"})
    sidecar.call("messages:updateInclusion", {"id": seeded["trigger"], "included": False})
    exported = sidecar.call("conversations:export", {"id": conversation, "format": "json"})
    assert (exported["filename"], exported["mimeType"]) == ("Versions.json", "application/json")
    imported = sidecar.call("conversations:import", {"content": exported["content"]})
    assert imported["id"] != conversation
    assert _comparable(sidecar, imported["id"]) == _comparable(sidecar, conversation)
    assert len(sidecar.call("agents:list")) == 2, "the agents were matched by name, not created again"
    assert sidecar.stop() == 0


def test_an_import_elsewhere_creates_the_agents_with_their_role_and_personality(
    spawn_sidecar: Spawn, data_dir: Path, tmp_path: Path
) -> None:
    source = spawn_sidecar(data_dir)
    role = source.call("roles:create", {"name": "Gardener", "systemPrompt": "You know plants."})
    personality = source.call("personalities:create", {"name": "Sunny", "behaviors": {"humor": 80}})
    config = source.call("llmConfigs:create", {"customName": "Work OpenAI", "provider": "openai",
                                               "apiKey": "sk-" + "k" * 30, "baseUrl": "http://10.1.2.3:8080/v1"})
    agent = source.call("agents:create", {"name": "Flora", "llmConfigId": config["id"], "model": "gpt-4.1-mini",
                                          "roleId": role["id"], "personalityId": personality["id"], "temperature": 0.2})
    room = make_room(source, [agent], title="Plants")
    _say(source, room.conversation_id, "Hello Flora")
    exported = source.call("conversations:export", {"id": room.conversation_id, "format": "json"})["content"]
    assert "sk-kkk" not in exported and "10.1.2.3" not in exported
    assert source.stop() == 0

    target = spawn_sidecar(tmp_path / "elsewhere")
    imported = target.call("conversations:import", {"content": exported})
    [seat] = target.call("conversationAgents:list", {"conversationId": imported["id"]})
    flora = target.call("agents:get", {"id": seat["agentId"]})
    assert (flora["name"], flora["model"], flora["temperature"]) == ("Flora", "gpt-4.1-mini", 0.2)
    assert target.call("llmConfigs:get", {"id": flora["llmConfigId"]})["provider"] == "demo"  # no openai config here
    assert target.call("roles:get", {"id": flora["roleId"]})["systemPrompt"] == "You know plants."
    assert target.call("personalities:get", {"id": flora["personalityId"]})["behaviors"] == {"humor": 80}
    assert [m["content"] for m in _list(target, imported["id"])] == ["Hello Flora"]
    assert target.stop() == 0


def test_a_markdown_export_is_a_readable_transcript(sidecar: Sidecar) -> None:
    room = make_room(sidecar, [make_agent(sidecar, "Ada", demo_config(sidecar), "demo")], title="Weekend plans")
    sidecar.call("processUserMessage", {"conversationId": room.conversation_id, "content": "Hike or bike?"})
    exported = sidecar.call("conversations:export", {"id": room.conversation_id, "format": "markdown"})
    assert (exported["filename"], exported["mimeType"]) == ("Weekend plans.md", "text/markdown")
    text = exported["content"]
    assert text.startswith("# Weekend plans\n") and "| Ada |" in text and "Hike or bike?" in text
    assert text.index("### You") < text.index("### Ada")


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("{not json", "content"),
        ('{"messages": []}', "format"),
        ('{"format": "chat-sidecar.conversation", "formatVersion": 9}', "formatVersion"),
    ],
)
def test_a_foreign_or_damaged_file_is_a_validation_error_naming_where(
    sidecar: Sidecar, content: str, field: str
) -> None:
    error = sidecar.call_error("conversations:import", {"content": content})
    assert (error.code, error.kind, error.data["field"]) == (VALIDATION, "validation", field)
    assert sidecar.call("conversations:list") == []


def _big_file(count: int) -> str:
    """A conversation file of `count` short messages: a user message, then three agents answering it."""
    members = [{"name": f"Bulk{i}", "model": "demo", "llmConfig": {"name": "Demo (offline)", "provider": "demo"},
                "role": {"name": "Bulk role", "systemPrompt": "Help."}, "personality": {"name": "Bulk mood"},
                "enabled": True, "displayOrder": i, "color": f"--agent-{i + 1}", "addedAt": "2026-01-01T00:00:00.000Z"}
               for i in range(3)]  # fmt: skip
    messages: list[dict[str, Any]] = []
    for i in range(count):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(1_767_225_600 + i))
        if i % 4 == 0:
            messages.append({"role": "user", "content": f"secretword{i} question", "createdAt": stamp})
        else:
            messages.append({"role": "agent", "agent": i % 4 - 1, "replyTo": i - i % 4,
                             "content": f"secretword{i} answer", "createdAt": stamp})  # fmt: skip
    document = {"format": "chat-sidecar.conversation", "formatVersion": 1, "agents": members, "messages": messages,
                "conversation": {"title": "Bulk", "chatMode": "manual", "createdAt": "2026-01-01T00:00:00.000Z",
                                 "updatedAt": "2026-01-01T00:00:00.000Z"}}  # fmt: skip
    return json.dumps(document, separators=(",", ":"))


def test_a_100000_message_import_keeps_the_sidecar_answering_and_logs_progress_without_text(sidecar: Sidecar) -> None:
    other = sidecar.call("conversations:create", {"title": "Meanwhile"})["id"]
    importing = sidecar.request("conversations:import", {"content": _big_file(100_000)})
    answered_meanwhile = 0
    while True:  # other requests keep being answered until the import's own answer arrives
        assert _list(sidecar, other) == []
        if sidecar.has_response(importing):
            break
        answered_meanwhile += 1
    imported = sidecar.response(importing)["result"]
    assert answered_meanwhile > 0
    assert len(_list(sidecar, imported["id"], limit=1000)) == 1000
    assert [h["message"]["content"] for h in sidecar.call("messages:search", {"query": "secretword99999"})] == [
        "secretword99999 answer"
    ]
    progress = [json.loads(line) for line in sidecar.stderr_lines if "import progress" in line]
    assert [entry["staged"] for entry in progress][-1] == 100_000 and len(progress) >= 5
    assert not any("secretword" in line for line in sidecar.stderr_lines), "message text reached the log"
