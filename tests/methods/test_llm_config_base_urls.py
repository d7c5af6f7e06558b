"""An llm config's base URL is stored in the form its provider's SDK takes, through create and every update."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.methods.table_data import DATA_METHODS
from sidecar.services import Services

pytestmark = pytest.mark.anyio


async def call(services: Services, method: str, params: dict[str, Any]) -> Any:
    return await DATA_METHODS[method](services, params)


@pytest.mark.parametrize(
    ("provider", "given", "saved"),
    [
        ("anthropic", "https://api.anthropic.com/v1/", "https://api.anthropic.com"),
        ("anthropic", "https://proxy.example/anthropic", "https://proxy.example/anthropic"),
        ("openai", " http://localhost:11434/v1 ", "http://localhost:11434/v1"),
        ("openai", "   ", None),
    ],
)
async def test_a_created_config_stores_its_base_url_in_its_providers_form(
    services: Services, provider: str, given: str, saved: str | None
) -> None:
    row = await call(services, "llmConfigs:create", {"customName": "C", "provider": provider, "baseUrl": given})
    assert row["baseUrl"] == saved
    assert (await call(services, "llmConfigs:get", {"id": row["id"]}))["baseUrl"] == saved


async def test_switching_only_the_provider_re_normalises_the_stored_base_url(services: Services) -> None:
    params = {"customName": "Ollama", "provider": "openai", "baseUrl": "http://localhost:11434/v1"}
    row = await call(services, "llmConfigs:create", params)
    switched = await call(services, "llmConfigs:update", {"id": row["id"], "provider": "anthropic"})
    assert switched["baseUrl"] == "http://localhost:11434"


async def test_a_new_base_url_is_normalised_for_the_stored_provider(services: Services) -> None:
    row = await call(services, "llmConfigs:create", {"customName": "Claude", "provider": "anthropic"})
    updated = await call(services, "llmConfigs:update", {"id": row["id"], "baseUrl": "https://proxy.example/v1"})
    assert updated["baseUrl"] == "https://proxy.example"
    cleared = await call(services, "llmConfigs:update", {"id": row["id"], "baseUrl": ""})
    assert cleared["baseUrl"] is None


async def test_an_update_that_leaves_provider_and_base_url_alone_keeps_the_stored_url(services: Services) -> None:
    params = {"customName": "Local", "provider": "openai", "baseUrl": "http://localhost:11434/v1"}
    row = await call(services, "llmConfigs:create", params)
    renamed = await call(services, "llmConfigs:update", {"id": row["id"], "customName": "Renamed"})
    assert (renamed["customName"], renamed["baseUrl"]) == ("Renamed", "http://localhost:11434/v1")
