"""`llmConfigs:*` handlers: rows from storage, API keys through the secret store (write-only)."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import anyio

from sidecar.model_listing import config_record, error_wire, fetch_provider_models
from sidecar.providers.registry import normalize_base_url
from sidecar.services import Services
from storage.db import Database
from storage.errors import StorageError
from storage.ids import IdFactory
from storage.repositories import llm_configs as repo

_KEY_PARAMS = ("id", "apiKey", "persist")


def _wire(services: Services, row: dict[str, Any]) -> dict[str, Any]:
    wire = dict(row)
    wire["hasApiKey"] = services.secrets.has(wire["id"], wire.pop("keyInKeychain"))
    return wire


def _row_fields(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in _KEY_PARAMS}


def _with_base_url(fields: dict[str, Any], provider: str, base_url: str | None) -> dict[str, Any]:
    # The provider's form of the URL (Anthropic's without `/v1`) comes from the registry: storage knows no provider.
    return {**fields, "baseUrl": normalize_base_url(provider, base_url)}


async def _update_fields(services: Services, config_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """The row fields to change; a new provider re-normalises the stored base URL too."""
    fields = _row_fields(params)
    if "provider" not in fields and "baseUrl" not in fields:
        return fields
    current = await services.db.run(repo.get_llm_config, config_id)
    base_url = fields["baseUrl"] if "baseUrl" in fields else current["baseUrl"]
    return _with_base_url(fields, fields.get("provider") or current["provider"], base_url)


def _check_update(database: Database, ids: IdFactory, config_id: str, fields: dict[str, Any]) -> bool:
    """Try the row change and roll it back, so its refusals (not found, conflict, validation) come before the key
    changes. Returns the row's keychain flag."""
    with _transaction(database) as transaction:
        repo.update_llm_config(ids, config_id, fields)
        transaction.rollback()
    return repo.key_in_keychain(config_id)


def _write_row(
    database: Database, ids: IdFactory, config_id: str, fields: dict[str, Any], in_keychain: bool
) -> dict[str, Any]:
    """The row's fields and its keychain flag, in one transaction."""
    with _transaction(database):
        repo.update_llm_config(ids, config_id, fields)
        return repo.set_key_in_keychain(ids, config_id, in_keychain)


def _transaction(database: Database) -> Any:
    assert database.sqlite is not None, "db.run opens the database before running a unit"
    return database.sqlite.atomic()


async def _change_key_and_row(
    services: Services, config_id: str, fields: dict[str, Any], params: dict[str, Any], in_keychain: bool
) -> dict[str, Any]:
    """The key (`apiKey`, None removes it), then the row; a row that cannot be written puts the old key back.

    Shielded: a cancel landing between the two would leave one changed without the other.
    """
    with anyio.CancelScope(shield=True):
        change = await services.secrets.change(config_id, params["apiKey"], params.get("persist", True), in_keychain)
        try:
            return await services.db.run(_write_row, services.db, services.ids, config_id, fields, change.in_keychain)
        except Exception:
            await services.secrets.undo(change)
            raise


async def list_llm_configs(services: Services, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [_wire(services, row) for row in await services.db.run(repo.list_llm_configs)]


async def get_llm_config(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return _wire(services, await services.db.run(repo.get_llm_config, params["id"]))


async def create_llm_config(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    fields = _with_base_url(_row_fields(params), params["provider"], params.get("baseUrl"))
    if params.get("apiKey") is None:
        return _wire(services, await services.db.run(repo.create_llm_config, services.ids, fields))
    # The key is kept under the new row's id, so the row comes first and goes again when the key cannot follow.
    with anyio.CancelScope(shield=True):
        row = await services.db.run(repo.create_llm_config, services.ids, fields)
        try:
            row = await _change_key_and_row(services, row["id"], {}, params, in_keychain=False)
        except Exception:
            with suppress(StorageError):  # gone already, or just taken into use by a concurrent request
                await services.db.run(repo.delete_llm_config, row["id"])
            raise
    return _wire(services, row)


async def update_llm_config(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    config_id = params["id"]
    fields = await _update_fields(services, config_id, params)
    if "apiKey" not in params:
        return _wire(services, await services.db.run(repo.update_llm_config, services.ids, config_id, fields))
    # All or nothing, key included (CONTRACT §4 v2): the row's refusals come before the key changes, and a row
    # write that still fails (a race) puts the old key back.
    in_keychain = await services.db.run(_check_update, services.db, services.ids, config_id, fields)
    return _wire(services, await _change_key_and_row(services, config_id, fields, params, in_keychain))


async def set_api_key(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    config_id = params["id"]
    in_keychain = await services.db.run(repo.key_in_keychain, config_id)
    return _wire(services, await _change_key_and_row(services, config_id, {}, params, in_keychain))


async def delete_llm_config(services: Services, params: dict[str, Any]) -> None:
    config_id = params["id"]
    was_in_keychain = await services.db.run(repo.delete_llm_config, config_id)
    await services.secrets.delete(config_id, was_in_keychain)


async def check_llm_config(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    """`llmConfigs:test`: the key and base URL checked by listing models, never by a (paid) completion call."""
    listing = await fetch_provider_models(services.secrets, await services.db.run(config_record, params["id"]))
    if listing.error is not None:
        return {"ok": False, "latencyMs": listing.latency_ms, "modelCount": None, **error_wire(listing.error)}
    count = len(listing.model_ids or ())
    return {"ok": True, "latencyMs": listing.latency_ms, "modelCount": count, "errorType": None, "error": None}
