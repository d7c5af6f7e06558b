"""The SQLite connection and the one lane every query goes through.

peewee is synchronous; one shared connection is used from a single worker thread at a time
(`CapacityLimiter(1)`), which is also what SQLite wants for writes. A unit of work is one sync
function, so a transaction never spans an `await`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread
from peewee import SqliteDatabase

T = TypeVar("T")

PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "busy_timeout": 5000,
    "cache_size": -16000,
    "temp_store": "memory",
}

DB_FILE_NAME = "chat-sidecar.sqlite3"


def open_sqlite(path: Path) -> SqliteDatabase:
    """Open (creating if needed) the database file with our pragmas; no schema work."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(str(path), pragmas=PRAGMAS, check_same_thread=False, thread_safe=False)
    db.connect()
    return db


class Database:
    """Async front of the shared connection: `await database.run(fn, *args)`."""

    def __init__(self, sqlite: SqliteDatabase) -> None:
        self.sqlite = sqlite
        self._lane = anyio.CapacityLimiter(1)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._lane)

    def run_sync(self, fn: Callable[..., T], *args: object) -> T:
        """For start-up and shutdown, when no event loop work can race it."""
        return fn(*args)

    def close(self) -> None:
        if not self.sqlite.is_closed():
            self.sqlite.close()
