"""`conversations:*` handlers."""

from __future__ import annotations

from typing import Any

from sidecar.services import Services
from storage.repositories import conversations as repo


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
