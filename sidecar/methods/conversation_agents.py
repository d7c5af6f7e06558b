"""`conversationAgents:*` handlers."""

from __future__ import annotations

from typing import Any

from sidecar.services import Services
from storage.repositories import conversation_agents as repo


async def list_conversation_agents(services: Services, params: dict[str, Any]) -> list[dict[str, Any]]:
    return await services.db.run(repo.list_conversation_agents, params["conversationId"])


async def add_conversation_agent(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.add_conversation_agent, services.ids, params)


async def update_conversation_agent(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("enabled") is not False:
        return await services.db.run(repo.update_conversation_agent, params)
    async with services.changing(lambda run: run.conversation_agent_id == params["id"]):  # its running turns end
        return await services.db.run(repo.update_conversation_agent, params)


async def remove_conversation_agent(services: Services, params: dict[str, Any]) -> None:
    async with services.changing(lambda run: run.conversation_agent_id == params["id"]):
        await services.db.run(repo.remove_conversation_agent, params["id"])
