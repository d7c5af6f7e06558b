"""Fixtures for handler tests: a `Services` over the real database (tests/conftest.py) with the memory secret store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sidecar.secrets import SecretStore
from sidecar.services import Services
from sidecar.settings import Settings
from storage.db import Database
from storage.ids import IdFactory


async def _no_emit(method: str, params: dict[str, Any]) -> None:
    raise AssertionError(f"the data API never notifies, got {method}")


@pytest.fixture
def services(data_dir: Path, database: Database, ids: IdFactory) -> Services:
    return Services(
        settings=Settings(data_dir=data_dir, secret_store="memory"),
        db=database,
        ids=ids,
        secrets=SecretStore("memory"),
        emit=_no_emit,
        lifecycle=None,  # type: ignore[arg-type]  # the data API never touches these
        chat=None,  # type: ignore[arg-type]
    )
