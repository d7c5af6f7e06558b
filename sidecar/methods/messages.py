"""`messages:*` handlers: the client writes user and system rows; agent rows come from the chat engine."""

from __future__ import annotations

from typing import Any

from sidecar.services import Services
from storage.repositories import messages as repo


async def list_messages(services: Services, params: dict[str, Any]) -> list[dict[str, Any]]:
    return await services.db.run(
        repo.list_messages, params["conversationId"], params.get("limit"), params.get("before")
    )


async def create_message(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.create_message, services.ids, params)


async def update_message_inclusion(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.update_inclusion, params["id"], params["included"])


async def delete_message(services: Services, params: dict[str, Any]) -> None:
    message_id = params["id"]
    # The trigger of running agents, or a reply being written: those agents end first.
    async with services.changing(lambda run: message_id in (run.trigger_id, run.reply.message_id)):
        await services.db.run(repo.delete_message, message_id)
