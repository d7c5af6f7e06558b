"""Helpers shared by the repositories: text rules, row lookup, JSON columns."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from peewee import Model

from storage.errors import InvalidValue, RowNotFound, RuleBroken
from storage.ids import IdFactory

M = TypeVar("M", bound=Model)


def check_unicode(field: str, value: str) -> None:
    """A lone surrogate (legal in JSON, not in UTF-8) would fail deep in SQLite; reject it at the edge."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValue(field, "must be valid Unicode text (no lone surrogates)") from None


def require_text(field: str, value: str) -> str:
    """A required name-like value: trimmed, and never empty or only whitespace."""
    check_unicode(field, value)
    text = value.strip()
    if not text:
        raise RuleBroken(f"{field} must not be empty or only whitespace", field=field)
    return text


def optional_text(field: str, value: str | None) -> str | None:
    """An optional prompt-like value: empty or whitespace-only means "not set"."""
    if value is None:
        return None
    check_unicode(field, value)
    return value if value.strip() else None


def plain_text(field: str, value: str) -> str:
    """Free text with a default of "" (descriptions, custom instructions): kept as given."""
    check_unicode(field, value)
    return value


def not_null(field: str, value: Any) -> Any:
    if value is None:
        raise InvalidValue(field, "must not be null")
    return value


def get_row(model: type[M], row_id: str, what: str) -> M:
    row = model.get_or_none(model._meta.primary_key == row_id)
    if row is None:
        raise RowNotFound(f"{what} not found", id=row_id)
    return row


def dump_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def stamp_if_changed(row: Model, before: dict[str, Any], ids: IdFactory) -> bool:
    """Bump `updated_at` only when a value really changed: an update with nothing new leaves the row as it is."""
    if row.__data__ == before:
        return False
    row.updated_at = ids.next()[1]
    return True
