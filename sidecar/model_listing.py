"""An llm config's models: the provider's own list, through its SDK's ``models.list``, merged with the catalogue.

Used by `models:list` and `llmConfigs:test`. Neither ever makes a completion call: listing models is free on
every provider, so checking a key costs nothing. Every provider failure (no key, a wrong key, an unreachable base
URL, a server without a models endpoint) is classified as a turn's would be and reported as a value, never raised.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import anyio

from sidecar.catalogue import ModelInfo, lookup, models_for
from sidecar.errors import SecretStorageError
from sidecar.logs import logger
from sidecar.providers.base import MODEL_LIST_TIMEOUT_S, ProviderError, ProviderSettings
from sidecar.providers.factory import import_sdk, open_provider
from sidecar.providers.registry import spec_for
from sidecar.secrets import SecretStore
from storage.errors import RowNotFound
from storage.records import LlmConfigRecord
from storage.repositories import llm_configs as repo

KEY_UNREADABLE = "The API key of this LLM configuration could not be read from the OS keychain."
# The SDK bounds each request; this bounds the whole listing (a server may page slowly).
LISTING_DEADLINE_S = MODEL_LIST_TIMEOUT_S
CLOSE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ProviderListing:
    """What the provider said: its model ids, or the classified error; and how long it took."""

    model_ids: list[str] | None
    error: ProviderError | None
    latency_ms: int


def config_record(config_id: str) -> LlmConfigRecord:
    """The config (run through `db.run`); an unknown id is not_found, as everywhere else."""
    record = repo.get_llm_config_record(config_id)
    if record is None:
        raise RowNotFound(f"{repo.WHAT} not found", id=config_id)
    return record


async def fetch_provider_models(secrets: SecretStore, config: LlmConfigRecord) -> ProviderListing:
    """Ask the config's endpoint for its models; a failure comes back classified, with the time it took."""
    started = time.monotonic()
    try:
        settings = await _settings(secrets, config)
        await import_sdk(config.provider)  # in a worker thread: the first import must not freeze the loop
        provider = open_provider(settings)
        started = time.monotonic()  # the latency is the endpoint's, not the one-time SDK import's
        try:
            with anyio.fail_after(LISTING_DEADLINE_S):
                model_ids = await provider.list_models()
        finally:
            # Shielded and bounded, so a cancelled request still releases its connection.
            with anyio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
                await provider.aclose()
    except ProviderError as exc:
        return _failed(config, exc, started)
    except Exception as exc:
        return _failed(config, spec_for(config.provider).classify_error(exc), started)
    return ProviderListing(model_ids, None, _ms_since(started))


def merged_models(provider: str, provider_ids: list[str] | None) -> list[dict[str, Any]]:
    """The provider's models in its order, then the catalogue's other entries in the catalogue's order.

    A provider model the catalogue knows (exactly or as a dated snapshot of an entry) is ``both`` and takes the
    catalogue's numbers; the catalogue entries the provider did not list are ``catalogue``.
    """
    models: dict[str, dict[str, Any]] = {}
    for model_id in provider_ids or ():
        if model_id not in models:
            info = lookup(provider, model_id)
            models[model_id] = _wire(model_id, info, "provider" if info is None else "both")
    listed = {model_id.lower() for model_id in models}
    for info in models_for(provider):
        if info.id.lower() not in listed:
            models[info.id] = _wire(info.id, info, "catalogue")
    return list(models.values())


def error_wire(error: ProviderError) -> dict[str, str]:
    return {"errorType": error.error_type, "error": error.safe_message}


async def _settings(secrets: SecretStore, config: LlmConfigRecord) -> ProviderSettings:
    api_key = None
    if spec_for(config.provider).uses_api_key:  # an unknown provider is a configuration error here
        try:
            api_key = await secrets.get(config.id, in_keychain=config.key_in_keychain)
        except SecretStorageError:
            raise ProviderError("configuration", safe_message=KEY_UNREADABLE) from None
    return ProviderSettings(config.provider, config.base_url, api_key, config.use_auth_header)


def _failed(config: LlmConfigRecord, error: ProviderError, started: float) -> ProviderListing:
    logger.bind(
        provider=config.provider, llmConfigId=config.id, statusCode=error.status_code, errorType=error.error_type
    ).info("listing models failed")
    return ProviderListing(None, error, _ms_since(started))


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _wire(model_id: str, info: ModelInfo | None, source: str) -> dict[str, Any]:
    """Every field present, null when the catalogue does not know it (a missing price is never made up)."""
    return {
        "id": model_id,
        "contextWindow": None if info is None else info.context_window,
        "maxOutputTokens": None if info is None else info.max_output_tokens,
        "pricing": None if info is None or info.pricing is None else info.pricing.to_wire(),
        "source": source,
    }
