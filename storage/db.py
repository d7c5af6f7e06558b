"""The SQLite connection and the one lane every query goes through.

peewee is synchronous; one shared connection is used from a single worker thread at a time
(`CapacityLimiter(1)`), which is also what SQLite wants for writes. A unit of work is one sync
function, so a transaction never spans an `await`.

At start-up the sidecar answers before the file is open (`Database.pending()` + `open_with`): queries
wait for the open, which runs in a worker thread and also imports peewee and the models.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.to_thread

if TYPE_CHECKING:
    from peewee import SqliteDatabase

T = TypeVar("T")

# The page cache keeps every page it has read until it is full, so it grows with the file until this bound: at
# 16 MB that was most of the sidecar's growth over days (+5 MB per 1,000 turns of 5 agents). 2 MB (SQLite's own
# default) is full within a few hundred turns; a page it misses comes from the OS's file cache. (KiB when negative.)
CACHE_KIB = 2000

PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "busy_timeout": 5000,
    "cache_size": -CACHE_KIB,
    "temp_store": "memory",
}

DB_FILE_NAME = "chat-sidecar.sqlite3"


class DatabaseUnavailable(RuntimeError):
    """The database could not be opened at start-up (the process is exiting; the log says why)."""


class DatabaseClosed(DatabaseUnavailable):
    """The database was closed (the process is shutting down): no query runs after that."""


def open_sqlite(path: Path) -> SqliteDatabase:
    """Open (creating if needed) the database file with our pragmas; no schema work."""
    from peewee import SqliteDatabase  # ~20 ms: imported by whoever opens the file, never at module import

    path.parent.mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(str(path), pragmas=PRAGMAS, check_same_thread=False, thread_safe=False)
    db.connect()
    return db


class Database:
    """Async front of the shared connection: `await database.run(fn, *args)`."""

    def __init__(self, sqlite: SqliteDatabase | None) -> None:
        self.sqlite = sqlite
        self._lane = anyio.CapacityLimiter(1)
        self._opened: anyio.Event | None = None  # set when a pending open has ended, opened or failed
        self._open_lock = threading.Lock()  # held while opening: `close` waits for an open in progress
        self._closed = False

    @classmethod
    def pending(cls) -> Database:
        """A database to be opened by `open_with`; call inside the event loop."""
        database = cls(None)
        database._opened = anyio.Event()
        return database

    async def open_with(self, opener: Callable[[], SqliteDatabase]) -> None:
        """Run `opener` in a worker thread; queries made meanwhile wait for it, and fail if it raised."""
        assert self._opened is not None, "only a pending() database is opened later"
        try:
            await anyio.to_thread.run_sync(self._open, opener)
        finally:
            self._opened.set()

    def _open(self, opener: Callable[[], SqliteDatabase]) -> None:
        with self._open_lock:
            if not self._closed:  # a shutdown that came first wins: stay closed
                self.sqlite = opener()

    async def wait_open(self) -> None:
        """Return once the file is open; raise DatabaseUnavailable if opening it failed."""
        if self.sqlite is None:
            if self._opened is not None:
                await self._opened.wait()
            if self.sqlite is None:
                raise DatabaseClosed("the database is closed") if self._closed else DatabaseUnavailable("not open")

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if self.sqlite is None:
            await self.wait_open()
        if self._closed:
            raise DatabaseClosed("the database is closed")
        return await anyio.to_thread.run_sync(self._run_open, fn, args, limiter=self._lane)

    def _run_open(self, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        # Checked again in the lane: a query queued behind `aclose` must not reopen the file (peewee would).
        if self._closed:
            raise DatabaseClosed("the database is closed")
        return fn(*args)

    def run_sync(self, fn: Callable[..., T], *args: object) -> T:
        """For start-up and shutdown, when no event loop work can race it."""
        return fn(*args)

    async def aclose(self, timeout: float) -> None:
        """Refuse further queries, wait (bounded) for the one in the lane, then flush and close.

        On time-out the file is left open rather than closed under a running query; WAL keeps it consistent.
        """
        self._closed = True
        with anyio.move_on_after(timeout):
            await anyio.to_thread.run_sync(self.close, limiter=self._lane)

    def close(self) -> None:
        """Flush and close; waits for an open in progress, and keeps a later open from happening."""
        with self._open_lock:
            self._closed = True
            if self.sqlite is not None and not self.sqlite.is_closed():
                self.sqlite.close()
