"""Fixtures for the provider tests: asyncio, no SDK environment variables, and one fake server per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fake_provider import FakeProvider


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_sdk_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Both SDKs read keys, base URLs, headers and profiles from OPENAI_* / ANTHROPIC_* variables.
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "ANTHROPIC_")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def _fake_server() -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        yield server


@pytest.fixture
def fake(_fake_server: FakeProvider) -> FakeProvider:
    """The shared fake server with an empty request log and fresh flaky counters."""
    _fake_server.reset()
    return _fake_server
