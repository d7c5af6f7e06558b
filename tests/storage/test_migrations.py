"""Schema steps: a new file gets them all, an old file is upgraded in place, a newer file is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.db import DB_FILE_NAME, open_sqlite
from storage.ids import IdFactory
from storage.migrations import LATEST_VERSION, SchemaTooNewError, apply_migrations, schema_version
from storage.models import MODELS
from storage.repositories import agents, llm_configs, messages, search, turns
from storage.setup import open_database


def _columns(sqlite: object, table: str) -> list[str]:
    return [row[1] for row in sqlite.execute_sql(f"PRAGMA table_info({table})")]  # type: ignore[attr-defined]


def test_a_new_file_gets_every_step_and_every_model_matches_its_table(tmp_path: Path) -> None:
    sqlite = open_sqlite(tmp_path / "new.sqlite3")
    assert apply_migrations(sqlite) == LATEST_VERSION == 7
    for model in MODELS:
        assert _columns(sqlite, model._meta.table_name) == [f.column_name for f in model._meta.sorted_fields]
    sqlite.close()


def test_migrating_an_up_to_date_file_again_changes_nothing(tmp_path: Path) -> None:
    sqlite = open_sqlite(tmp_path / "again.sqlite3")
    apply_migrations(sqlite)
    assert apply_migrations(sqlite) == LATEST_VERSION
    sqlite.close()


def test_a_database_made_by_migration_1_alone_is_upgraded_in_place_with_its_rows_kept(tmp_path: Path) -> None:
    old = open_sqlite(tmp_path / DB_FILE_NAME)
    assert apply_migrations(old, up_to=1) == 1
    assert "about_conversation_agent_id" not in _columns(old, "messages")
    old.execute_sql("INSERT INTO conversations VALUES ('c1', 'Old chat', 'manual', 1000, 1000)")
    old.execute_sql(
        "INSERT INTO messages (id, conversation_id, role, content, included, status, created_at)"
        " VALUES ('m1', 'c1', 'user', 'hello from v1', 1, 'complete', 1001)"
    )
    old.close()

    db = open_database(tmp_path, IdFactory())
    try:
        assert schema_version(db.sqlite) == LATEST_VERSION
        assert "about_conversation_agent_id" in _columns(db.sqlite, "messages")
        indexes = [row[1] for row in db.sqlite.execute_sql("PRAGMA index_list(messages)")]
        assert "messages_about_reply_to" in indexes
        [message] = turns.load_history("c1")
        assert (message.id, message.content, message.status) == ("m1", "hello from v1", "complete")
    finally:
        db.close()


def _rows(sqlite: object, table: str, columns: list[str]) -> list[tuple[object, ...]]:
    query = f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid"
    return list(sqlite.execute_sql(query))  # type: ignore[attr-defined]


def _version_2_file(sqlite: object) -> None:
    """What a step-2 sidecar would have left: a config, an agent in a conversation, a turn with every kind of row."""
    assert apply_migrations(sqlite, up_to=2) == 2  # type: ignore[arg-type]
    usage = '{"inputTokens":3,"outputTokens":4,"firstTokenMs":10,"totalMs":20}'
    for sql in [
        "INSERT INTO app_meta VALUES ('seeded_at', '900')",
        "INSERT INTO llm_configs (id, custom_name, provider, base_url, use_auth_header, key_in_keychain, created_at,"
        " updated_at) VALUES ('l1', 'Local', 'openai', 'http://localhost:11434/v1', 0, 1, 901, 902)",
        "INSERT INTO roles VALUES ('r1', 'Old role', 'Helps', 'Help.', 903, 903)",
        "INSERT INTO personalities VALUES ('p1', 'Old', '{\"humor\":40}', 'Be kind', 904, 904)",
        "INSERT INTO agents (id, name, llm_config_id, model, role_id, personality_id, temperature, created_at,"
        " updated_at) VALUES ('a1', 'Veteran', 'l1', 'llama3', 'r1', 'p1', 0.5, 905, 905)",
        "INSERT INTO conversations VALUES ('c1', 'From v2', 'round-robin', 906, 906)",
        "INSERT INTO conversation_agents VALUES ('ca1', 'c1', 'a1', 1, 0, '--agent-1', 907)",
        "INSERT INTO messages (id, conversation_id, conversation_agent_id, role, content, included, status,"
        " reply_to_id, created_at, usage, about_conversation_agent_id) VALUES"
        " ('m1', 'c1', NULL, 'user', 'Hello', 1, 'complete', NULL, 1000, NULL, NULL),"
        f" ('m2', 'c1', 'ca1', 'agent', 'Hi there', 0, 'complete', 'm1', 1001, '{usage}', NULL),"
        " ('m3', 'c1', NULL, 'system', 'Agent Veteran: oops', 1, 'complete', 'm1', 1002, NULL, 'ca1'),"
        " ('m4', 'c1', 'ca1', 'agent', 'Half a', 1, 'cancelled', 'm1', 1003, NULL, NULL)",
    ]:
        sqlite.execute_sql(sql)  # type: ignore[attr-defined]


def test_a_database_made_by_migration_2_with_rows_is_upgraded_keeping_every_row_and_field(tmp_path: Path) -> None:
    old = open_sqlite(tmp_path / DB_FILE_NAME)
    _version_2_file(old)
    tables = ["app_meta", "llm_configs", "roles", "personalities", "agents", "conversations", "conversation_agents",
              "messages"]  # fmt: skip
    columns = {table: _columns(old, table) for table in tables}
    before = {table: _rows(old, table, columns[table]) for table in tables}
    old.close()

    db = open_database(tmp_path, IdFactory())
    try:
        assert schema_version(db.sqlite) == LATEST_VERSION
        for table in tables:  # every old column of every old row, unchanged (and no seeding on top)
            assert _rows(db.sqlite, table, columns[table]) == before[table], table
        assert _rows(db.sqlite, "llm_configs", ["max_concurrency"]) == [(8,)]
        assert _rows(db.sqlite, "messages", ["stop_reason"]) == [(None,)] * 4
        [config] = llm_configs.list_llm_configs()
        assert (config["customName"], config["maxConcurrency"]) == ("Local", 8)
        listed = messages.list_messages("c1")
        assert [(m["id"], m["status"], m["stopReason"]) for m in listed] == [
            ("m1", "complete", None), ("m2", "complete", None), ("m3", "complete", None), ("m4", "cancelled", None)
        ]  # fmt: skip
        [participant] = turns.load_participants("c1")
        assert participant.llm_config is not None and participant.llm_config.max_concurrency == 8
        assert [m.stop_reason for m in turns.load_history("c1")] == [None] * 4
    finally:
        db.close()


def test_a_file_from_a_newer_sidecar_is_refused_untouched(tmp_path: Path) -> None:
    sqlite = open_sqlite(tmp_path / "future.sqlite3")
    sqlite.execute_sql(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with pytest.raises(SchemaTooNewError):
        apply_migrations(sqlite)
    assert sqlite.get_tables() == []
    sqlite.close()


def test_a_failing_step_leaves_the_file_at_its_old_version(tmp_path: Path) -> None:
    sqlite = open_sqlite(tmp_path / "half.sqlite3")
    apply_migrations(sqlite, up_to=1)
    sqlite.execute_sql("CREATE INDEX messages_about_reply_to ON messages (reply_to_id)")  # step 2 will collide
    with pytest.raises(Exception, match="already exists"):
        apply_migrations(sqlite)
    assert schema_version(sqlite) == 1
    assert "about_conversation_agent_id" not in _columns(sqlite, "messages")
    sqlite.close()


def _version_4_file(sqlite: object) -> None:
    """A step-4 file with rows of every kind, two replies of one agent to one message, and a reply left streaming."""
    _version_2_file(sqlite)
    assert apply_migrations(sqlite, up_to=4) == 4  # type: ignore[arg-type]
    sqlite.execute_sql(  # type: ignore[attr-defined]
        "INSERT INTO messages (id, conversation_id, conversation_agent_id, role, content, included, status,"
        " reply_to_id, created_at, stop_reason) VALUES"
        " ('m5', 'c1', 'ca1', 'agent', 'Hi again, separately', 1, 'complete', 'm1', 1004, 'end'),"
        " ('m6', 'c1', 'ca1', 'agent', 'Cut off mid', 1, 'streaming', 'm1', 1005, NULL)"
    )


def test_a_database_made_by_migration_4_gets_versions_and_a_search_index_with_every_row_kept(tmp_path: Path) -> None:
    old = open_sqlite(tmp_path / DB_FILE_NAME)
    _version_4_file(old)
    columns = _columns(old, "messages")
    before = _rows(old, "messages", columns)
    old.close()

    db = open_database(tmp_path, IdFactory())
    try:
        assert schema_version(db.sqlite) == LATEST_VERSION
        after = _rows(db.sqlite, "messages", columns)
        assert [row[:6] for row in after] == [row[:6] for row in before]  # id .. included: untouched
        statuses = [row[columns.index("status")] for row in after]
        assert statuses == ["complete", "complete", "complete", "cancelled", "complete", "interrupted"]
        assert _rows(db.sqlite, "messages", ["version_of_id", "version", "active", "edited_at"]) == [
            (None, 1, 1, None)
        ] * 6
        listed = messages.list_messages("c1")
        replies = [(m["id"], m["version"], m["versionCount"]) for m in listed if m["role"] == "agent"]
        assert replies == [("m2", 1, 1), ("m4", 1, 1), ("m5", 1, 1), ("m6", 1, 1)]  # never taken for versions
        assert [(m["version"], m["editedAt"]) for m in listed if m["role"] != "agent"] == [(None, None)] * 2
        assert [m.content for m in turns.load_history("c1")] == [row[4] for row in before]
        # The index holds every row from before, the one interrupted at start-up included.
        found = {hit["message"]["id"] for word in ("hello", "hi", "oops", "half", "cut") for hit in
                 search.search_messages(word)}  # fmt: skip
        assert found == {"m1", "m2", "m3", "m4", "m5", "m6"}
        db.sqlite.execute_sql("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
    finally:
        db.close()


def test_a_database_made_by_migration_5_gets_agents_without_a_context_window_that_one_can_then_set(
    tmp_path: Path,
) -> None:
    old = open_sqlite(tmp_path / DB_FILE_NAME)
    _version_2_file(old)
    assert apply_migrations(old, up_to=5) == 5
    columns = _columns(old, "agents")
    before = _rows(old, "agents", columns)
    old.close()

    db = open_database(tmp_path, IdFactory())
    try:
        assert schema_version(db.sqlite) == LATEST_VERSION
        assert _rows(db.sqlite, "agents", columns) == before  # every old field kept
        assert agents.get_agent("a1")["contextWindow"] is None
        [participant] = turns.load_participants("c1")
        assert participant.context_window is None  # the catalogue decides
        agents.update_agent(IdFactory(), "a1", {"contextWindow": 32768})
        [participant] = turns.load_participants("c1")
        assert participant.context_window == 32768
    finally:
        db.close()
