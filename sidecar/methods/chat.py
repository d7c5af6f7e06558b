"""`processUserMessage`, `buildAgentContext`, `chat:cancel`, `chat:retryAgent`, `chat:regenerate`,
`chat:startAuto`."""

from __future__ import annotations

from typing import Any

from sidecar.services import Services


async def process_user_message(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    chat = await services.chat_engine()
    return await chat.process_user_message(
        params["conversationId"], params.get("userMessageId"), params.get("content"), params.get("onBusy", "interrupt")
    )


async def build_agent_context(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    chat = await services.chat_engine()
    return await chat.build_context(params["conversationId"], params["agentId"], params.get("userMessageId"))


async def cancel(services: Services, params: dict[str, Any]) -> dict[str, int]:
    if services.chat is None:
        return {"cancelled": 0}  # no engine yet: no turn has ever run in this process
    return {"cancelled": services.chat.cancel(params["conversationId"], params.get("conversationAgentId"))}


async def retry_agent(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    chat = await services.chat_engine()
    return await chat.retry_agent(params["conversationId"], params["conversationAgentId"], params["userMessageId"])


async def start_auto(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    chat = await services.chat_engine()
    return await chat.start_auto(params["conversationId"])


async def regenerate(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    chat = await services.chat_engine()
    return await chat.regenerate(params["conversationId"], params["conversationAgentId"], params["userMessageId"])
