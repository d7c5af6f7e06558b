"""Fixtures for storage tests: a controllable clock, an id factory and a real SQLite file in tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.db import Database
from storage.ids import IdFactory
from storage.repositories import agents, llm_configs, personalities, roles
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
    db = open_database(data_dir, ids)
    yield db
    db.close()


@pytest.fixture
def make_agent(database: Database, ids: IdFactory) -> Callable[..., dict[str, Any]]:
    """Create an agent on the seeded demo config, first role and first personality."""

    def make(name: str = "Ada", **overrides: Any) -> dict[str, Any]:
        params = {
            "name": name,
            "model": "demo",
            "llmConfigId": llm_configs.list_llm_configs()[0]["id"],
            "roleId": roles.list_roles()[0]["id"],
            "personalityId": personalities.list_personalities()[0]["id"],
            **overrides,
        }
        return agents.create_agent(ids, params)

    return make
