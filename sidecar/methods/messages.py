"""`messages:*` handlers: the client writes user and system rows; agent rows come from the chat engine."""

from __future__ import annotations

from typing import Any

from sidecar.services import Services
from storage.repositories import messages as repo
from storage.repositories import search

DEFAULT_SEARCH_LIMIT = 50


async def list_messages(services: Services, params: dict[str, Any]) -> list[dict[str, Any]]:
    return await services.db.run(
        repo.list_messages,
        params["conversationId"],
        params.get("limit"),
        params.get("before"),
        params.get("allVersions", False),
    )


async def create_message(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.create_message, services.ids, params)


async def update_message(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.update_content, services.ids, params["id"], params["content"])


async def update_message_inclusion(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.update_inclusion, params["id"], params["included"])


async def delete_message(services: Services, params: dict[str, Any]) -> None:
    message_id = params["id"]
    # The trigger of running agents, or a reply being written: those agents end first.
    async with services.changing(lambda run: message_id in (run.trigger_id, run.reply.message_id)):
        await services.db.run(repo.delete_message, message_id)


async def list_versions(services: Services, params: dict[str, Any]) -> list[dict[str, Any]]:
    return await services.db.run(repo.list_versions, params["id"])


async def select_version(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.db.run(repo.select_version, params["id"])


async def search_messages(services: Services, params: dict[str, Any]) -> list[dict[str, Any]]:
    limit = params.get("limit", DEFAULT_SEARCH_LIMIT)
    return await services.db.run(search.search_messages, params["query"], params.get("conversationId"), limit)
