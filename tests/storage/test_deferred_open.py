"""`Database.pending()`: the server answers before its file is open; queries wait for the open (a real file)."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest
from peewee import SqliteDatabase

from storage.db import Database, DatabaseUnavailable
from storage.ids import IdFactory
from storage.migrations import SchemaTooNewError
from storage.repositories import llm_configs
from storage.setup import prepare_sqlite

pytestmark = pytest.mark.anyio


async def test_a_query_made_before_the_open_waits_for_it_and_sees_the_seeded_rows(
    data_dir: Path, ids: IdFactory
) -> None:
    db = Database.pending()
    may_open = threading.Event()
    answers: list[list[dict[str, object]]] = []

    def opener() -> SqliteDatabase:
        may_open.wait()
        return prepare_sqlite(data_dir, ids)

    async def query() -> None:
        answers.append(await db.run(llm_configs.list_llm_configs))

    async with anyio.create_task_group() as tg:
        tg.start_soon(db.open_with, opener)
        tg.start_soon(query)
        await anyio.wait_all_tasks_blocked()
        assert answers == [], "the query must not run before the file is open"
        may_open.set()
    assert [row["customName"] for row in answers[0]] == ["Demo (offline)"]
    db.close()


async def test_a_failed_open_fails_the_waiting_queries_and_is_raised(data_dir: Path) -> None:
    db = Database.pending()

    def opener() -> SqliteDatabase:
        raise SchemaTooNewError("the database was written by a newer chat-sidecar")

    with pytest.raises(SchemaTooNewError):
        await db.open_with(opener)
    with pytest.raises(DatabaseUnavailable):
        await db.run(llm_configs.list_llm_configs)
    db.close()


async def test_a_close_before_the_open_keeps_the_file_closed(data_dir: Path, ids: IdFactory) -> None:
    db = Database.pending()
    db.close()  # a shutdown that came before the open started
    await db.open_with(lambda: prepare_sqlite(data_dir, ids))
    assert db.sqlite is None
    assert not data_dir.exists(), "the opener never ran"
    with pytest.raises(DatabaseUnavailable):
        await db.run(llm_configs.list_llm_configs)
