"""Shared fixtures: a clean environment, the anyio backend, the fake provider, and sidecar subprocesses."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_provider import FakeProvider
from tests.sidecar_client import Sidecar


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
