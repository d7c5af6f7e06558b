"""Fixtures for storage tests (the clock, ids and the real database come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from storage.db import Database
from storage.ids import IdFactory
from storage.repositories import agents, llm_configs, personalities, roles


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
