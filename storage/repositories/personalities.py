"""Personalities: behaviour traits (0..100) and custom instructions an agent's replies follow."""

from __future__ import annotations

from typing import Any

from storage.errors import RowConflict
from storage.ids import IdFactory
from storage.models import Agent, Personality
from storage.records import PersonalityRecord
from storage.repositories._common import (
    dump_json,
    get_row,
    load_json,
    not_null,
    plain_text,
    require_text,
    stamp_if_changed,
)

WHAT = "Personality"


def to_wire(row: Personality) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "behaviors": load_json(row.behaviors),
        "customInstructions": row.custom_instructions,
    }


def to_record(row: Personality) -> PersonalityRecord:
    return PersonalityRecord(
        id=row.id, name=row.name, behaviors=load_json(row.behaviors), custom_instructions=row.custom_instructions
    )


def list_personalities() -> list[dict[str, Any]]:
    return [to_wire(r) for r in Personality.select().order_by(Personality.created_at, Personality.id)]


def get_personality(personality_id: str) -> dict[str, Any]:
    return to_wire(get_row(Personality, personality_id, WHAT))


def create_personality(ids: IdFactory, params: dict[str, Any]) -> dict[str, Any]:
    personality_id, now = ids.next()
    row = Personality.create(
        id=personality_id,
        name=require_text("name", params["name"]),
        behaviors=dump_json(params.get("behaviors") or {}),
        custom_instructions=plain_text("customInstructions", params.get("customInstructions") or ""),
        created_at=now,
        updated_at=now,
    )
    return to_wire(row)


def update_personality(ids: IdFactory, personality_id: str, params: dict[str, Any]) -> dict[str, Any]:
    with Personality._meta.database.atomic():
        row = get_row(Personality, personality_id, WHAT)
        before = dict(row.__data__)
        if "name" in params:
            row.name = require_text("name", not_null("name", params["name"]))
        if "behaviors" in params:  # the whole map is replaced: a trait left out is gone
            row.behaviors = dump_json(params["behaviors"] or {})
        if "customInstructions" in params:
            row.custom_instructions = plain_text("customInstructions", params["customInstructions"] or "")
        if stamp_if_changed(row, before, ids):
            row.save()
    return to_wire(row)


def delete_personality(personality_id: str) -> None:
    with Personality._meta.database.atomic():
        row = get_row(Personality, personality_id, WHAT)
        users = Agent.select().where(Agent.personality_id == personality_id).count()
        if users:
            raise RowConflict(
                f"This personality is used by {users} agent(s); change or delete them first", id=personality_id
            )
        row.delete_instance()
