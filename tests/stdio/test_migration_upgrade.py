"""A data dir written by an older sidecar (schema step 1 only) is upgraded in place by a real start, its rows intact."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from peewee import SqliteDatabase

from storage.db import DB_FILE_NAME, open_sqlite
from storage.ids import IdFactory, to_iso
from storage.migrations import LATEST_VERSION, apply_migrations
from tests.conftest import integrity_check
from tests.sidecar_client import Sidecar

NEW_COLUMN = "about_conversation_agent_id"  # added to messages by step 2


def _columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute("PRAGMA user_version").fetchone()[0]


def _insert(sqlite: SqliteDatabase, table: str, **values: Any) -> None:
    columns, marks = ", ".join(values), ", ".join("?" * len(values))
    sqlite.execute_sql(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(values.values()))


def _version_1_data_dir(data_dir: Path) -> dict[str, dict[str, str]]:
    """What a step-1 sidecar would have left: seeded, one conversation with an agent, a turn and an unfinished reply.

    Plain SQL in step 1's shape, so the file stays what an old sidecar wrote whatever today's models look like.
    """
    ids = IdFactory()
    made = {name: ids.next() for name in ("config", "role", "personality", "agent", "conversation", "member",
                                          "user", "reply", "note", "unfinished")}
    row_id = {name: value[0] for name, value in made.items()}
    at = {name: value[1] for name, value in made.items()}
    sqlite = open_sqlite(data_dir / DB_FILE_NAME)
    assert apply_migrations(sqlite, up_to=1) == 1
    _insert(sqlite, "app_meta", key="seeded_at", value=str(at["config"]))
    _insert(sqlite, "llm_configs", id=row_id["config"], custom_name="Old demo", provider="demo",
            created_at=at["config"], updated_at=at["config"])
    _insert(sqlite, "roles", id=row_id["role"], name="Old role", system_prompt="Help.",
            created_at=at["role"], updated_at=at["role"])
    _insert(sqlite, "personalities", id=row_id["personality"], name="Old", behaviors='{"humor":40}',
            created_at=at["personality"], updated_at=at["personality"])
    _insert(sqlite, "agents", id=row_id["agent"], name="Veteran", llm_config_id=row_id["config"], model="demo",
            role_id=row_id["role"], personality_id=row_id["personality"], created_at=at["agent"],
            updated_at=at["agent"])
    _insert(sqlite, "conversations", id=row_id["conversation"], title="From v1", chat_mode="manual",
            created_at=at["conversation"], updated_at=at["conversation"])
    _insert(sqlite, "conversation_agents", id=row_id["member"], conversation_id=row_id["conversation"],
            agent_id=row_id["agent"], display_order=0, color="--agent-1", created_at=at["member"])
    usage = '{"inputTokens":3,"outputTokens":4,"firstTokenMs":10,"totalMs":20}'
    messages = [
        ("user", None, "user", "Hello from v1", "complete", None, None),
        ("reply", row_id["member"], "agent", "Hi, I'm Veteran", "complete", row_id["user"], usage),
        ("note", None, "system", "Agent Veteran: something went wrong", "complete", row_id["user"], None),
        ("unfinished", row_id["member"], "agent", "I was saying", "streaming", row_id["user"], None),
    ]
    for name, member_id, role, content, status, reply_to, row_usage in messages:
        _insert(sqlite, "messages", id=row_id[name], conversation_id=row_id["conversation"],
                conversation_agent_id=member_id, role=role, content=content, status=status, reply_to_id=reply_to,
                created_at=at[name], usage=row_usage)
    sqlite.close()
    return {name: {"id": row_id[name], "at": to_iso(at[name])} for name in made}


@pytest.fixture
def old_data_dir(tmp_path: Path) -> tuple[Path, dict[str, dict[str, str]]]:
    data_dir = tmp_path / "v1"
    rows = _version_1_data_dir(data_dir)
    assert NEW_COLUMN not in _columns(data_dir / DB_FILE_NAME, "messages")
    return data_dir, rows


@pytest.mark.parametrize("framing", ["ndjson", "lsp"])
def test_a_version_1_database_is_upgraded_and_its_messages_are_listed(
    spawn_sidecar: Callable[..., Sidecar], old_data_dir: tuple[Path, dict[str, dict[str, str]]], framing: str
) -> None:
    data_dir, rows = old_data_dir
    sidecar = spawn_sidecar(data_dir, framing=framing)
    listed = sidecar.call("messages:list", {"conversationId": rows["conversation"]["id"]})
    assert [(m["id"], m["createdAt"]) for m in listed] == [
        (rows[name]["id"], rows[name]["at"]) for name in ("user", "reply", "note", "unfinished")
    ]
    user, reply, note, unfinished = listed
    assert (user["role"], user["content"], user["included"], user["conversationAgentId"]) == (
        "user", "Hello from v1", True, None
    )
    assert (reply["role"], reply["conversationAgentId"], reply["replyToId"]) == (
        "agent", rows["member"]["id"], rows["user"]["id"]
    )
    assert reply["usage"] == {"inputTokens": 3, "outputTokens": 4, "firstTokenMs": 10, "totalMs": 20}
    assert (note["role"], note["content"]) == ("system", "Agent Veteran: something went wrong")
    assert unfinished["status"] == "interrupted", "a reply left streaming by the old process is marked at start-up"
    assert sidecar.stop() == 0

    database = data_dir / DB_FILE_NAME
    assert _user_version(database) == LATEST_VERSION
    assert NEW_COLUMN in _columns(database, "messages")
    assert integrity_check(data_dir) == "ok"


def test_the_rest_of_a_version_1_database_is_kept_and_not_seeded_again(
    spawn_sidecar: Callable[..., Sidecar], old_data_dir: tuple[Path, dict[str, dict[str, str]]]
) -> None:
    data_dir, rows = old_data_dir
    sidecar = spawn_sidecar(data_dir)
    assert [c["customName"] for c in sidecar.call("llmConfigs:list")] == ["Old demo"]
    assert [r["name"] for r in sidecar.call("roles:list")] == ["Old role"]
    assert [p["behaviors"] for p in sidecar.call("personalities:list")] == [{"humor": 40}]
    [agent] = sidecar.call("agents:list")
    assert (agent["name"], agent["timeoutMs"]) == ("Veteran", 60000)
    [conversation] = sidecar.call("conversations:list")
    assert (conversation["id"], conversation["title"]) == (rows["conversation"]["id"], "From v1")
    [member] = sidecar.call("conversationAgents:list", {"conversationId": conversation["id"]})
    assert (member["id"], member["agentName"], member["color"]) == (rows["member"]["id"], "Veteran", "--agent-1")


def test_an_upgraded_database_takes_new_turns_and_removes_an_agent_with_its_messages(
    spawn_sidecar: Callable[..., Sidecar], old_data_dir: tuple[Path, dict[str, dict[str, str]]]
) -> None:
    data_dir, rows = old_data_dir
    sidecar = spawn_sidecar(data_dir)
    conversation_id = rows["conversation"]["id"]
    result = sidecar.call("processUserMessage", {"conversationId": conversation_id, "content": "Still there?"})
    assert (result["totalAgents"], result["successfulAgents"]) == (1, 1)
    assert len(sidecar.call("messages:list", {"conversationId": conversation_id})) == 6
    sidecar.call("conversationAgents:remove", {"id": rows["member"]["id"]})
    remaining = sidecar.call("messages:list", {"conversationId": conversation_id})
    assert [m["content"] for m in remaining] == ["Hello from v1", "Agent Veteran: something went wrong", "Still there?"]


def test_starting_twice_on_an_upgraded_database_changes_nothing(
    spawn_sidecar: Callable[..., Sidecar], old_data_dir: tuple[Path, dict[str, dict[str, str]]]
) -> None:
    data_dir, rows = old_data_dir
    params = {"conversationId": rows["conversation"]["id"]}
    first = spawn_sidecar(data_dir)
    listed = first.call("messages:list", params)
    assert first.stop() == 0
    second = spawn_sidecar(data_dir)
    assert second.call("messages:list", params) == listed
    assert second.stop() == 0
    assert _user_version(data_dir / DB_FILE_NAME) == LATEST_VERSION


def test_a_database_from_a_newer_sidecar_is_refused_and_left_untouched(
    spawn_sidecar: Callable[..., Sidecar], tmp_path: Path
) -> None:
    data_dir = tmp_path / "future"
    data_dir.mkdir()
    database = data_dir / DB_FILE_NAME
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE from_the_future (x)")
        connection.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    sidecar = spawn_sidecar(data_dir)
    assert sidecar.wait_exit() != 0
    assert bytes(sidecar.stdout_bytes) == b"", "nothing but frames on stdout, and there was nothing to answer"
    assert any("newer than this sidecar supports" in line for line in sidecar.stderr_lines), "the log says why"
    assert _user_version(database) == LATEST_VERSION + 1
    assert _columns(database, "from_the_future") == ["x"]
    with sqlite3.connect(database) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert tables == ["from_the_future"], "no schema step ran on it"
