"""`conversations:*` handlers."""

from __future__ import annotations

from typing import Any

from sidecar.chat.cost import total_usage
from sidecar.services import Services
from storage.repositories import conversations as repo
from storage.repositories.usage import reply_usage_by_agent


async def list_conversations(services: Services, params: dict[str, Any]) -> list[dict[str, Any]]:
    return await services.db.run(repo.list_conversations)


async def get_conversation(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.get_conversation, params["id"])


async def create_conversation(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.create_conversation, services.ids, params)


async def update_conversation(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    current = await services.db.run(repo.get_conversation, params["id"])
    if params.get("chatMode", current["chatMode"]) == current["chatMode"]:
        return await services.db.run(repo.update_conversation, services.ids, params["id"], params)
    # Switching the mode stops a running auto run (`cancelled`) first.
    async with services.changing(lambda run: False, params["id"], kinds=("auto",)):
        return await services.db.run(repo.update_conversation, services.ids, params["id"], params)


async def delete_conversation(services: Services, params: dict[str, Any]) -> None:
    conversation_id = params["id"]
    async with services.changing(lambda run: run.conversation_id == conversation_id, conversation_id):
        await services.db.run(repo.delete_conversation, conversation_id)


async def conversation_usage(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    """Usage summed over every agent reply, all versions (CONTRACT v2 §5d), per agent and in total."""
    members = await services.db.run(reply_usage_by_agent, params["id"])
    per_agent = [
        {"conversationAgentId": m.conversation_agent_id, "agentName": m.agent_name, "usage": total_usage(m.usages)}
        for m in members
    ]
    return {"total": total_usage(u for m in members for u in m.usages), "perAgent": per_agent}


async def context_usage(services: Services, params: dict[str, Any]) -> list[dict[str, Any]]:
    """How full each enabled agent's context would be on its next call (CONTRACT v2 §5c), before any trimming."""
    chat = await services.chat_engine()  # it holds the per-model calibration of the token estimates
    return await chat.context_usage(params["id"])
