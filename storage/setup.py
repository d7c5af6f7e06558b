"""Open the data directory's database: connect, bind the models, migrate, seed once, mark interrupted replies, check
the search index."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from storage.db import DB_FILE_NAME, Database, open_sqlite
from storage.ids import IdFactory
from storage.migrations import apply_migrations, ensure_search_index
from storage.models import MODELS
from storage.repositories.turns import mark_interrupted
from storage.seed import seed_once

if TYPE_CHECKING:
    from peewee import SqliteDatabase


def open_database(data_dir: Path, ids: IdFactory) -> Database:
    """Open and prepare the file now (tests, tools); the server uses `prepare_sqlite` in the background."""
    return Database(prepare_sqlite(data_dir, ids))


def prepare_sqlite(data_dir: Path, ids: IdFactory) -> SqliteDatabase:
    """Sync on purpose: runs before any query (the server's queries wait for it)."""
    sqlite = open_sqlite(data_dir / DB_FILE_NAME)
    try:
        sqlite.bind(MODELS)
        apply_migrations(sqlite)
        seed_once(ids)
        mark_interrupted()  # a reply still `streaming` now belongs to a process that died
        ensure_search_index(sqlite)  # after that: the index holds no `streaming` row
    except BaseException:
        sqlite.close()
        raise
    return sqlite
