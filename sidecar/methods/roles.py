"""`roles:*` handlers."""

from __future__ import annotations

from typing import Any

from sidecar.services import Services
from storage.repositories import roles as repo


async def list_roles(services: Services, params: dict[str, Any]) -> list[dict[str, Any]]:
    return await services.db.run(repo.list_roles)


async def get_role(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.get_role, params["id"])


async def create_role(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.create_role, services.ids, params)


async def update_role(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.update_role, services.ids, params["id"], params)


async def delete_role(services: Services, params: dict[str, Any]) -> None:
    await services.db.run(repo.delete_role, params["id"])
