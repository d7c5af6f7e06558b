"""Conversation files as pure functions: the Markdown transcript against its golden file, the JSON export against
the `ConversationFile` schema and back through `plan_import`, and the import's checks naming where a file is wrong.

After an intended change to the transcript's wording, regenerate the golden file and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_conversation_files.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from sidecar.conversation_export import export_file, to_json, to_markdown
from sidecar.conversation_import import FileProblem, plan_import
from sidecar.validation import check_component
from storage.ids import IdFactory
from storage.repositories.transfer import MESSAGE_COLUMNS, ConversationDump, Member

GOLDEN = Path(__file__).parent / "golden" / "conversation_export.md"
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"
T0 = 1_764_144_000_000  # 2025-11-26T08:00:00.000Z
EXPORTED_AT = T0 + 3_600_000


def _member(seat: str, name: str, role: str, order: int, **extra: Any) -> Member:
    values: dict[str, Any] = {
        "conversation_agent_id": seat, "enabled": True, "display_order": order, "color": f"--agent-{order + 1}",
        "added_at": T0 + order, "name": name, "model": "demo", "provider": "demo", "llm_config_name": "Demo (offline)",
        "role": {"name": role, "description": f"The {role.lower()}.", "systemPrompt": f"You are the {role.lower()}."},
        "personality": {"name": "Balanced", "behaviors": {"humor": 40}, "customInstructions": ""},
        "system_prompt": None, "personality_behaviors": None, "temperature": None, "max_tokens": None, "top_p": None,
        "timeout_ms": 60000,
    }  # fmt: skip
    return Member(**{**values, **extra})


def _row(message_id: str, role: str, content: str, at: int, **columns: Any) -> tuple[Any, ...]:
    values = {"id": message_id, "conversation_agent_id": None, "role": role, "content": content, "included": True,
              "status": "complete", "reply_to_id": None, "created_at": T0 + at, "usage": None,
              "about_conversation_agent_id": None, "stop_reason": None, "version_of_id": None, "version": 1,
              "active": True, "edited_at": None, **columns}  # fmt: skip
    return tuple(values[name] for name in MESSAGE_COLUMNS)


USAGE = '{"inputTokens":250,"outputTokens":30,"firstTokenMs":31,"totalMs":927}'
DUMP = ConversationDump(
    conversation={"id": "c1", "title": "Garden | plans", "chatMode": "manual",
                  "autoSettings": {"maxMessages": 12, "delayMs": 0, "style": "sequential"},
                  "createdAt": "2025-11-26T08:00:00.000Z", "updatedAt": "2025-11-26T08:00:00.000Z"},
    members=[
        _member("ca1", "Ada", "Domain Expert", 0),
        _member("ca2", "Bob", "Editor", 1, enabled=False, temperature=0.4, personality_behaviors={"humor": -20}),
    ],
    messages=[
        _row("m1", "user", "Which tomatoes grow best in shade?", 1000, edited_at=T0 + 9000),
        _row("m2", "agent", "Cherry tomatoes, first try.", 2000, conversation_agent_id="ca1", reply_to_id="m1",
             usage=USAGE, stop_reason="end", active=False),
        _row("m3", "agent", "Cherry tomatoes cope best: **4 hours** of sun.\n\n- water often\n", 2000,
             conversation_agent_id="ca1", reply_to_id="m1", usage=USAGE, stop_reason="end", version_of_id="m2",
             version=2),
        _row("m4", "agent", "Half a thou", 2500, conversation_agent_id="ca2", reply_to_id="m1", status="cancelled"),
        _row("m5", "system", "Agent Bob: The provider is busy right now.", 2600, reply_to_id="m1",
             about_conversation_agent_id="ca2", included=False),
        _row("m6", "user", "Merci — et les 🍅 ?", 5000),
    ],
)  # fmt: skip


def test_the_markdown_transcript_matches_its_golden_file() -> None:
    text = to_markdown(DUMP, EXPORTED_AT)
    if UPDATE_GOLDEN:
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_the_markdown_transcript_shows_active_versions_only() -> None:
    text = to_markdown(DUMP, EXPORTED_AT)
    assert "first try" not in text and "**4 hours**" in text


def test_an_export_is_a_named_file_of_its_format() -> None:
    assert {k: v for k, v in export_file(DUMP, "json", EXPORTED_AT).items() if k != "content"} == {
        "filename": "Garden _ plans.json", "mimeType": "application/json"
    }  # fmt: skip
    assert export_file(DUMP, "markdown", EXPORTED_AT)["filename"] == "Garden _ plans.md"
    dots = ConversationDump({**DUMP.conversation, "title": "../.."}, [], [])
    assert export_file(dots, "markdown", EXPORTED_AT)["filename"] == "conversation.md"


def test_the_json_export_is_a_conversation_file_with_no_key_or_config_detail() -> None:
    content = to_json(DUMP, EXPORTED_AT)
    document = json.loads(content)
    assert check_component("ConversationFile", document) is None  # messages included, through the schema
    assert document["agents"][0]["llmConfig"] == {"name": "Demo (offline)", "provider": "demo"}
    assert "baseUrl" not in content and "apiKey" not in content and '"id"' not in content
    assert document["messages"][2] == {
        "role": "agent", "content": "Cherry tomatoes cope best: **4 hours** of sun.\n\n- water often\n",
        "createdAt": "2025-11-26T08:00:02.000Z", "agent": 0, "replyTo": 0,
        "usage": {"inputTokens": 250, "outputTokens": 30, "firstTokenMs": 31, "totalMs": 927}, "stopReason": "end",
        "versionOf": 1, "version": 2,
    }  # fmt: skip
    assert document["messages"][1]["active"] is False


def test_importing_an_export_gives_back_every_row_with_new_ids() -> None:
    plan = plan_import(to_json(DUMP, EXPORTED_AT), IdFactory())
    new_ids = [row[0] for row in plan.rows]
    seats = {member.conversation_agent_id: new.conversation_agent_id
             for member, new in zip(DUMP.members, plan.conversation.agents, strict=True)}  # fmt: skip
    renamed = {**dict(zip((row[0] for row in DUMP.messages), new_ids, strict=True)), **seats}
    expected = [tuple(renamed.get(v, v) if isinstance(v, str) else v for v in row) for row in DUMP.messages]
    assert plan.rows == expected
    assert set(new_ids).isdisjoint(row[0] for row in DUMP.messages)
    assert [(a.name, a.enabled, a.temperature, a.personality_behaviors) for a in plan.conversation.agents] == [
        ("Ada", True, None, None), ("Bob", False, 0.4, {"humor": -20})
    ]  # fmt: skip
    assert (plan.conversation.title, plan.conversation.created_at) == ("Garden | plans", T0)


def _broken(change: Any) -> dict[str, Any]:
    document = json.loads(to_json(DUMP, EXPORTED_AT))
    change(document)
    return document


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("not json at all", "content"),
        ("[1, 2]", "format"),
        (json.dumps({"format": "something.else"}), "format"),
        (json.dumps(_broken(lambda d: d.update(formatVersion=2))), "formatVersion"),
        (json.dumps(_broken(lambda d: d.pop("agents"))), "agents"),
        (json.dumps(_broken(lambda d: d["conversation"].update(title=""))), "conversation.title"),
        (json.dumps(_broken(lambda d: d["agents"][1]["llmConfig"].update(provider="ollama"))),
         "agents.1.llmConfig.provider"),
        (json.dumps(_broken(lambda d: d["agents"][0]["llmConfig"].update(apiKey="sk-x"))), "agents.0.llmConfig.apiKey"),
        (json.dumps(_broken(lambda d: d["agents"][0].update(color="red"))), "agents.0.color"),
        (json.dumps(_broken(lambda d: d.update(messages={}))), "messages"),
        (json.dumps(_broken(lambda d: d["messages"].append(3))), "messages.6"),
        (json.dumps(_broken(lambda d: d["messages"][0].update(role="bot"))), "messages.0.role"),
        (json.dumps(_broken(lambda d: d["messages"][0].update(content="   "))), "messages.0.content"),
        (json.dumps(_broken(lambda d: d["messages"][0].update(content="\x07"))), "messages.0.content"),
        (json.dumps(_broken(lambda d: d["messages"][0].update(createdAt="yesterday"))), "messages.0.createdAt"),
        (json.dumps(_broken(lambda d: d["messages"][0].update(createdAt="2025-02-30T00:00:00.000Z"))),
         "messages.0.createdAt"),
        (json.dumps(_broken(lambda d: d["conversation"].update(createdAt="2025-13-01T00:00:00.000Z"))),
         "conversation.createdAt"),
        (json.dumps(_broken(lambda d: d["agents"][1].update(addedAt="2025-04-31T00:00:00.000Z"))), "agents.1.addedAt"),
        (json.dumps(_broken(lambda d: d["messages"][0].update(agent=0))), "messages.0.agent"),
        (json.dumps(_broken(lambda d: d["messages"][2].update(agent=7))), "messages.2.agent"),
        (json.dumps(_broken(lambda d: d["messages"][1].update(replyTo=4))), "messages.1.replyTo"),
        (json.dumps(_broken(lambda d: d["messages"][1].update(replyTo=True))), "messages.1.replyTo"),
        (json.dumps(_broken(lambda d: d["messages"][2].update(versionOf=0))), "messages.2.versionOf"),
        (json.dumps(_broken(lambda d: d["messages"][2].update(version=3))), "messages.2.version"),
        (json.dumps(_broken(lambda d: d["messages"][2].update(active=False))), "messages.1.active"),
        (json.dumps(_broken(lambda d: d["messages"][0].update(status="streaming"))), "messages.0.status"),
        (json.dumps(_broken(lambda d: d["messages"][2]["usage"].update(inputTokens=-1))),
         "messages.2.usage.inputTokens"),
        (json.dumps(_broken(lambda d: d["messages"][0].update(stopReason="end"))), "messages.0.stopReason"),
        (json.dumps(_broken(lambda d: d["messages"][0].update(id="m1"))), "messages.0.id"),
        (json.dumps(_broken(lambda d: d["agents"][0].update(name="\ud800"))), "agents.0.name"),
        (json.dumps(_broken(lambda d: d["messages"][2].update(content="\ud800"))), "messages.2.content"),
    ],
)  # fmt: skip
def test_a_bad_or_foreign_file_is_refused_naming_where(content: str, field: str) -> None:
    with pytest.raises(FileProblem) as raised:
        plan_import(content, IdFactory())
    assert raised.value.code == -32012 and raised.value.data["kind"] == "validation"
    assert raised.value.data["field"] == field, raised.value.message


def test_a_reply_left_streaming_is_imported_as_interrupted() -> None:
    document = _broken(lambda d: d["messages"][3].update(status="streaming"))
    plan = plan_import(json.dumps(document), IdFactory())
    assert plan.rows[3][MESSAGE_COLUMNS.index("status")] == "interrupted"
