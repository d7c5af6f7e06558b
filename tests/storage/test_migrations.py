"""Schema steps: a new file gets them all, an old file is upgraded in place, a newer file is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.db import DB_FILE_NAME, open_sqlite
from storage.ids import IdFactory
from storage.migrations import LATEST_VERSION, SchemaTooNewError, apply_migrations, schema_version
from storage.models import MODELS
from storage.repositories import turns
from storage.setup import open_database


def _columns(sqlite: object, table: str) -> list[str]:
    return [row[1] for row in sqlite.execute_sql(f"PRAGMA table_info({table})")]  # type: ignore[attr-defined]


def test_a_new_file_gets_every_step_and_every_model_matches_its_table(tmp_path: Path) -> None:
    sqlite = open_sqlite(tmp_path / "new.sqlite3")
    assert apply_migrations(sqlite) == LATEST_VERSION == 2
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
