"""`models:list`: an llm config's models, the provider's own list merged with the built-in catalogue."""

from __future__ import annotations

from typing import Any

from sidecar.model_listing import config_record, error_wire, fetch_provider_models, merged_models
from sidecar.services import Services


async def list_models(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    """The catalogue alone, with `providerError`, when the provider cannot list its models (never an error)."""
    config = await services.db.run(config_record, params["llmConfigId"])
    listing = await fetch_provider_models(services.secrets, config)
    return {
        "models": merged_models(config.provider, listing.model_ids),
        "providerError": None if listing.error is None else error_wire(listing.error),
    }
