"""Fixtures for handler tests: a real database in tmp_path and a `Services` with the memory secret store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sidecar.secrets import SecretStore
from sidecar.services import Services
from sidecar.settings import Settings
from storage.db import Database
from storage.ids import IdFactory
from storage.setup import open_database

START_MS = 1_764_144_000_000  # 2025-11-26T08:00:00.000Z


class Clock:
    """A clock tests move by hand, so timestamps are exact and no test sleeps."""

    def __init__(self, now: int = START_MS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int = 1) -> None:
        self.now += ms


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
def database(tmp_path: Path, ids: IdFactory) -> Iterator[Database]:
    db = open_database(tmp_path, ids)
    yield db
    db.close()


async def _no_emit(method: str, params: dict[str, Any]) -> None:
    raise AssertionError(f"the data API never notifies, got {method}")


@pytest.fixture
def services(tmp_path: Path, database: Database, ids: IdFactory) -> Services:
    return Services(
        settings=Settings(data_dir=tmp_path, secret_store="memory"),
        db=database,
        ids=ids,
        secrets=SecretStore("memory"),
        emit=_no_emit,
        lifecycle=None,  # type: ignore[arg-type]  # the data API never touches these
        chat=None,  # type: ignore[arg-type]
    )
