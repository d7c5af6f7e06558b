"""`processUserMessage`, `buildAgentContext`, `chat:cancel`, `chat:retryAgent`."""

from __future__ import annotations

from typing import Any

from sidecar.services import Services


async def process_user_message(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.chat.process_user_message(
        params["conversationId"], params.get("userMessageId"), params.get("content")
    )


async def build_agent_context(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.chat.build_context(params["conversationId"], params["agentId"], params.get("userMessageId"))


async def cancel(services: Services, params: dict[str, Any]) -> dict[str, int]:
    return {"cancelled": services.chat.cancel(params["conversationId"], params.get("conversationAgentId"))}


async def retry_agent(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return await services.chat.retry_agent(
        params["conversationId"], params["conversationAgentId"], params["userMessageId"]
    )
