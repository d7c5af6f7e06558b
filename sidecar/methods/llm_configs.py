"""`llmConfigs:*` handlers: rows from storage, API keys through the secret store (write-only)."""

from __future__ import annotations

from typing import Any

from sidecar.errors import SecretStorageError
from sidecar.services import Services
from storage.repositories import llm_configs as repo

_KEY_PARAMS = ("id", "apiKey", "persist")


def _wire(services: Services, row: dict[str, Any]) -> dict[str, Any]:
    wire = dict(row)
    wire["hasApiKey"] = services.secrets.has(wire["id"], wire.pop("keyInKeychain"))
    return wire


def _row_fields(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in _KEY_PARAMS}


async def _store_key(services: Services, config_id: str, api_key: str, persist: bool) -> dict[str, Any]:
    was_in_keychain = await services.db.run(repo.key_in_keychain, config_id)
    stored = await services.secrets.set(config_id, api_key, persist)
    # A session-only key replaces a persisted one: drop the old keychain entry so it cannot come back.
    in_keychain = stored or (was_in_keychain and not await services.secrets.forget_persisted(config_id))
    return await services.db.run(repo.set_key_in_keychain, services.ids, config_id, in_keychain)


async def _remove_key(services: Services, config_id: str) -> None:
    was_in_keychain = await services.db.run(repo.key_in_keychain, config_id)
    await services.secrets.delete(config_id, was_in_keychain)
    await services.db.run(repo.set_key_in_keychain, services.ids, config_id, False)


async def list_llm_configs(services: Services, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [_wire(services, row) for row in await services.db.run(repo.list_llm_configs)]


async def get_llm_config(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return _wire(services, await services.db.run(repo.get_llm_config, params["id"]))


async def create_llm_config(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    row = await services.db.run(repo.create_llm_config, services.ids, _row_fields(params))
    if params.get("apiKey") is not None:
        try:
            row = await _store_key(services, row["id"], params["apiKey"], params.get("persist", True))
        except SecretStorageError:
            await services.db.run(repo.delete_llm_config, row["id"])  # all or nothing for the client
            raise
    return _wire(services, row)


async def update_llm_config(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    config_id = params["id"]
    # The key first: the usual failure (no keychain) then leaves the row untouched.
    if "apiKey" in params:
        if params["apiKey"] is None:
            await _remove_key(services, config_id)
        else:
            await _store_key(services, config_id, params["apiKey"], params.get("persist", True))
    row = await services.db.run(repo.update_llm_config, services.ids, config_id, _row_fields(params))
    return _wire(services, row)


async def set_api_key(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    row = await _store_key(services, params["id"], params["apiKey"], params.get("persist", True))
    return _wire(services, row)


async def delete_llm_config(services: Services, params: dict[str, Any]) -> None:
    config_id = params["id"]
    was_in_keychain = await services.db.run(repo.delete_llm_config, config_id)
    await services.secrets.delete(config_id, was_in_keychain)
