"""Roles: a name, a description and the system prompt that tells an agent what job it does."""

from __future__ import annotations

from typing import Any

from storage.errors import RowConflict
from storage.ids import IdFactory
from storage.models import Agent, Role
from storage.records import RoleRecord
from storage.repositories._common import get_row, not_null, plain_text, require_text, stamp_if_changed

WHAT = "Role"


def to_wire(row: Role) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "description": row.description, "systemPrompt": row.system_prompt}


def to_record(row: Role) -> RoleRecord:
    return RoleRecord(id=row.id, name=row.name, description=row.description, system_prompt=row.system_prompt)


def list_roles() -> list[dict[str, Any]]:
    return [to_wire(r) for r in Role.select().order_by(Role.created_at, Role.id)]


def get_role(role_id: str) -> dict[str, Any]:
    return to_wire(get_row(Role, role_id, WHAT))


def create_role(ids: IdFactory, params: dict[str, Any]) -> dict[str, Any]:
    role_id, now = ids.next()
    row = Role.create(
        id=role_id,
        name=require_text("name", params["name"]),
        description=plain_text("description", params.get("description") or ""),
        system_prompt=require_text("systemPrompt", params["systemPrompt"]),
        created_at=now,
        updated_at=now,
    )
    return to_wire(row)


def update_role(ids: IdFactory, role_id: str, params: dict[str, Any]) -> dict[str, Any]:
    with Role._meta.database.atomic():
        row = get_row(Role, role_id, WHAT)
        before = dict(row.__data__)
        if "name" in params:
            row.name = require_text("name", not_null("name", params["name"]))
        if "description" in params:
            row.description = plain_text("description", params["description"] or "")
        if "systemPrompt" in params:
            row.system_prompt = require_text("systemPrompt", not_null("systemPrompt", params["systemPrompt"]))
        if stamp_if_changed(row, before, ids):
            row.save()
    return to_wire(row)


def delete_role(role_id: str) -> None:
    with Role._meta.database.atomic():
        row = get_row(Role, role_id, WHAT)
        users = Agent.select().where(Agent.role_id == role_id).count()
        if users:
            raise RowConflict(f"This role is used by {users} agent(s); change or delete them first", id=role_id)
        row.delete_instance()
