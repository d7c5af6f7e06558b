"""LLM provider configurations. The API key itself never touches this table, only whether the keychain holds one."""

from __future__ import annotations

from typing import Any

from peewee import JOIN, IntegrityError, fn

from storage.errors import RowConflict
from storage.ids import IdFactory, to_iso
from storage.models import Agent, LlmConfig
from storage.records import LlmConfigRecord
from storage.repositories._common import get_row, not_null, require_text, stamp_if_changed

WHAT = "LLM config"
DEFAULT_MAX_CONCURRENCY = 8  # five agents on one key start together


def to_wire(row: LlmConfig) -> dict[str, Any]:
    """Wire row without `hasApiKey`; `keyInKeychain` is internal and the handler turns it into `hasApiKey`."""
    return {
        "id": row.id,
        "customName": row.custom_name,
        "provider": row.provider,
        "baseUrl": row.base_url,
        "useAuthHeader": bool(row.use_auth_header),
        "maxConcurrency": row.max_concurrency,
        "keyInKeychain": bool(row.key_in_keychain),
        "createdAt": to_iso(row.created_at),
        "updatedAt": to_iso(row.updated_at),
    }


def to_record(row: LlmConfig) -> LlmConfigRecord:
    return LlmConfigRecord(
        id=row.id,
        custom_name=row.custom_name,
        provider=row.provider,
        base_url=row.base_url,
        use_auth_header=bool(row.use_auth_header),
        key_in_keychain=bool(row.key_in_keychain),
        max_concurrency=row.max_concurrency,
    )


def _stored_base_url(base_url: str | None) -> str | None:
    """Blank means "the provider's default". The provider's own form (a trailing `/v1` or not) is the caller's
    job: the method layer normalises through the provider registry before params get here."""
    if base_url is None or not base_url.strip():
        return None
    return base_url.strip()


def _check_unique_name(name: str, own_id: str | None) -> None:
    query = LlmConfig.select().where(LlmConfig.custom_name == name)
    if own_id is not None:
        query = query.where(LlmConfig.id != own_id)
    if query.exists():
        raise RowConflict(f"An LLM config named {name!r} already exists", field="customName")


def _save(row: LlmConfig, force_insert: bool) -> None:
    try:
        row.save(force_insert=force_insert)
    except IntegrityError:  # a race past the explicit check
        raise RowConflict("An LLM config with that name already exists", field="customName") from None


def list_llm_configs() -> list[dict[str, Any]]:
    return [to_wire(r) for r in LlmConfig.select().order_by(LlmConfig.created_at, LlmConfig.id)]


def get_llm_config(config_id: str) -> dict[str, Any]:
    return to_wire(get_row(LlmConfig, config_id, WHAT))


def get_llm_config_record(config_id: str) -> LlmConfigRecord | None:
    row = LlmConfig.get_or_none(LlmConfig.id == config_id)
    return None if row is None else to_record(row)


def key_in_keychain(config_id: str) -> bool:
    return bool(get_row(LlmConfig, config_id, WHAT).key_in_keychain)


def create_llm_config(ids: IdFactory, params: dict[str, Any]) -> dict[str, Any]:
    name = require_text("customName", params["customName"])
    provider = params["provider"]
    config_id, now = ids.next()
    row = LlmConfig(
        id=config_id,
        custom_name=name,
        provider=provider,
        base_url=_stored_base_url(params.get("baseUrl")),
        use_auth_header=params.get("useAuthHeader", True),
        max_concurrency=params.get("maxConcurrency", DEFAULT_MAX_CONCURRENCY),
        key_in_keychain=False,
        created_at=now,
        updated_at=now,
    )
    with LlmConfig._meta.database.atomic():
        _check_unique_name(name, None)
        _save(row, force_insert=True)
    return to_wire(row)


def update_llm_config(ids: IdFactory, config_id: str, params: dict[str, Any]) -> dict[str, Any]:
    with LlmConfig._meta.database.atomic():
        row = get_row(LlmConfig, config_id, WHAT)
        before = dict(row.__data__)
        if "customName" in params:
            row.custom_name = require_text("customName", not_null("customName", params["customName"]))
            _check_unique_name(row.custom_name, config_id)
        if "provider" in params:
            row.provider = not_null("provider", params["provider"])
        if "useAuthHeader" in params:
            row.use_auth_header = not_null("useAuthHeader", params["useAuthHeader"])
        if "maxConcurrency" in params:
            row.max_concurrency = not_null("maxConcurrency", params["maxConcurrency"])  # the schema refuses null too
        if "baseUrl" in params:
            row.base_url = _stored_base_url(params["baseUrl"])
        if stamp_if_changed(row, before, ids):
            _save(row, force_insert=False)
    return to_wire(row)


def set_key_in_keychain(ids: IdFactory, config_id: str, in_keychain: bool) -> dict[str, Any]:
    """Record whether the keychain holds this config's key, and bump `updatedAt` (`hasApiKey` changed)."""
    with LlmConfig._meta.database.atomic():
        row = get_row(LlmConfig, config_id, WHAT)
        row.key_in_keychain = in_keychain
        row.updated_at = ids.next()[1]
        row.save()
    return to_wire(row)


def delete_llm_config(config_id: str) -> bool:
    """Delete the row; return whether the keychain held a key for it (so the caller removes that too)."""
    with LlmConfig._meta.database.atomic():
        row = get_row(LlmConfig, config_id, WHAT)
        users = Agent.select().where(Agent.llm_config_id == config_id).count()
        if users:
            raise RowConflict(f"This LLM config is used by {users} agent(s); change or delete them first", id=config_id)
        row.delete_instance()
    return bool(row.key_in_keychain)


def providers_in_use() -> list[str]:
    """The providers the stored llm configs name, the one with the most agents first (what a first turn likely
    needs soonest), then by name."""
    agents = fn.COUNT(Agent.id)
    query = (
        LlmConfig.select(LlmConfig.provider)
        .join(Agent, JOIN.LEFT_OUTER, on=(Agent.llm_config_id == LlmConfig.id))
        .group_by(LlmConfig.provider)
        .order_by(agents.desc(), LlmConfig.provider)
    )
    return [row.provider for row in query]
