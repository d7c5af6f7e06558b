"""Shared fixtures: a clean environment, the anyio backend, the fake provider, and sidecar subprocesses."""

from __future__ import annotations

import compileall
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.db import Database
from storage.ids import IdFactory
from storage.setup import open_database
from tests.fake_provider import FakeProvider
from tests.sidecar_client import Sidecar

START_MS = 1_764_144_000_000  # 2025-11-26T08:00:00.000Z


class Clock:
    """A clock tests move by hand, so timestamps are exact and no test sleeps."""

    def __init__(self, now: int = START_MS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int = 1) -> None:
        self.now += ms


def pytest_sessionstart(session: pytest.Session) -> None:
    """Byte-compile our packages once, as a user's first run would. With PYTHONDONTWRITEBYTECODE=1 (set on the CI
    machines) every `python -m sidecar` the tests spawn would otherwise compile them again: ~150 ms a spawn, over a
    thousand spawns. An edited module is recompiled by Python itself (the .pyc records its source's mtime)."""
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller compiled them before the workers started
    root = Path(__file__).resolve().parent.parent
    for package in ("sidecar", "storage"):
        compileall.compile_dir(str(root / package), quiet=1)


def pytest_addoption(parser: pytest.Parser) -> None:
    # Declared at the root so `pytest --reliability-profile release` works from anywhere (tests/reliability).
    parser.addoption("--reliability-profile", choices=("quick", "release"), default=None,
                     help="reliability suite profile (tests/reliability; default quick)")


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDKs read keys, base URLs and profiles from the environment: tests must not.
    import os

    for name in list(os.environ):
        if name.startswith(("OPENAI_", "ANTHROPIC_")):
            monkeypatch.delenv(name)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ids(clock: Clock) -> IdFactory:
    return IdFactory(clock_ms=clock)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def database(data_dir: Path, ids: IdFactory) -> Iterator[Database]:
    """A real SQLite file, migrated and seeded, for repository and handler tests."""
    db = open_database(data_dir, ids)
    yield db
    db.close()


@pytest.fixture(scope="session")
def fake_provider() -> Iterator[FakeProvider]:
    server = FakeProvider()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def spawn_sidecar(tmp_path: Path) -> Iterator[Callable[..., Sidecar]]:
    """Start sidecars; at teardown close stdin, expect exit code 0, and kill any that hang."""
    started: list[Sidecar] = []

    def spawn(data_dir: Path | None = None, **kwargs: Any) -> Sidecar:
        sidecar = Sidecar(data_dir or tmp_path / "data", **kwargs)
        started.append(sidecar)
        return sidecar

    yield spawn
    for sidecar in started:
        if sidecar.proc.poll() is None:
            sidecar.stop()


def integrity_check(data_dir: Path) -> str:
    with sqlite3.connect(data_dir / "chat-sidecar.sqlite3") as connection:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
