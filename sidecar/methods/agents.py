"""`agents:*` handlers."""

from __future__ import annotations

from typing import Any

from sidecar.services import Services
from storage.repositories import agents as repo


async def list_agents(services: Services, params: dict[str, Any]) -> list[dict[str, Any]]:
    return await services.db.run(repo.list_agents)


async def get_agent(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.get_agent, params["id"])


async def create_agent(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.create_agent, services.ids, params)


async def update_agent(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.update_agent, services.ids, params["id"], params)


async def delete_agent(services: Services, params: dict[str, Any]) -> None:
    # No agent runs without a seat, and a seated agent cannot be deleted (conflict): nothing to cancel first.
    await services.db.run(repo.delete_agent, params["id"])
