"""`personalities:*` handlers."""

from __future__ import annotations

from typing import Any

from sidecar.services import Services
from storage.repositories import personalities as repo


async def list_personalities(services: Services, params: dict[str, Any]) -> list[dict[str, Any]]:
    return await services.db.run(repo.list_personalities)


async def get_personality(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.get_personality, params["id"])


async def create_personality(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.create_personality, services.ids, params)


async def update_personality(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.update_personality, services.ids, params["id"], params)


async def delete_personality(services: Services, params: dict[str, Any]) -> None:
    await services.db.run(repo.delete_personality, params["id"])
