"""The data API's wire method names → handlers (merged into the main method table).

Each handler imports its module (and so peewee, the models and the repositories) on its first call: the
sidecar answers `initialize` before any of that is loaded. In the server, the database's opener thread has
imported them already (`DATA_MODULES`), so the first call finds them loaded.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from sidecar.services import Handler, Services

DATA_MODULES = tuple(
    f"sidecar.methods.{name}"
    for name in (
        "llm_configs", "roles", "personalities", "agents", "conversations", "conversation_agents", "messages",
        "conversation_files", "models",
    )
)  # fmt: skip


def _on_first_call(module: str, function: str) -> Handler:
    resolved: list[Handler] = []

    async def handler(services: Services, params: dict[str, Any]) -> Any:
        if not resolved:
            # Not while the opener thread imports storage: two threads importing one module cycle can deadlock.
            await services.db.wait_open()
            resolved.append(getattr(import_module(f"sidecar.methods.{module}"), function))
        return await resolved[0](services, params)

    handler.__name__ = handler.__qualname__ = function
    return handler


DATA_METHODS: dict[str, Handler] = {
    "llmConfigs:list": _on_first_call("llm_configs", "list_llm_configs"),
    "llmConfigs:get": _on_first_call("llm_configs", "get_llm_config"),
    "llmConfigs:create": _on_first_call("llm_configs", "create_llm_config"),
    "llmConfigs:update": _on_first_call("llm_configs", "update_llm_config"),
    "llmConfigs:delete": _on_first_call("llm_configs", "delete_llm_config"),
    "llmConfigs:setApiKey": _on_first_call("llm_configs", "set_api_key"),
    "llmConfigs:test": _on_first_call("llm_configs", "check_llm_config"),
    "models:list": _on_first_call("models", "list_models"),
    "roles:list": _on_first_call("roles", "list_roles"),
    "roles:get": _on_first_call("roles", "get_role"),
    "roles:create": _on_first_call("roles", "create_role"),
    "roles:update": _on_first_call("roles", "update_role"),
    "roles:delete": _on_first_call("roles", "delete_role"),
    "personalities:list": _on_first_call("personalities", "list_personalities"),
    "personalities:get": _on_first_call("personalities", "get_personality"),
    "personalities:create": _on_first_call("personalities", "create_personality"),
    "personalities:update": _on_first_call("personalities", "update_personality"),
    "personalities:delete": _on_first_call("personalities", "delete_personality"),
    "agents:list": _on_first_call("agents", "list_agents"),
    "agents:get": _on_first_call("agents", "get_agent"),
    "agents:create": _on_first_call("agents", "create_agent"),
    "agents:update": _on_first_call("agents", "update_agent"),
    "agents:delete": _on_first_call("agents", "delete_agent"),
    "conversations:list": _on_first_call("conversations", "list_conversations"),
    "conversations:get": _on_first_call("conversations", "get_conversation"),
    "conversations:create": _on_first_call("conversations", "create_conversation"),
    "conversations:update": _on_first_call("conversations", "update_conversation"),
    "conversations:delete": _on_first_call("conversations", "delete_conversation"),
    "conversations:export": _on_first_call("conversation_files", "export_conversation"),
    "conversations:import": _on_first_call("conversation_files", "import_conversation"),
    "conversations:usage": _on_first_call("conversations", "conversation_usage"),
    "conversations:contextUsage": _on_first_call("conversations", "context_usage"),
    "conversationAgents:list": _on_first_call("conversation_agents", "list_conversation_agents"),
    "conversationAgents:add": _on_first_call("conversation_agents", "add_conversation_agent"),
    "conversationAgents:update": _on_first_call("conversation_agents", "update_conversation_agent"),
    "conversationAgents:remove": _on_first_call("conversation_agents", "remove_conversation_agent"),
    "messages:list": _on_first_call("messages", "list_messages"),
    "messages:create": _on_first_call("messages", "create_message"),
    "messages:updateInclusion": _on_first_call("messages", "update_message_inclusion"),
    "messages:delete": _on_first_call("messages", "delete_message"),
    "messages:update": _on_first_call("messages", "update_message"),
    "messages:versions": _on_first_call("messages", "list_versions"),
    "messages:selectVersion": _on_first_call("messages", "select_version"),
    "messages:search": _on_first_call("messages", "search_messages"),
}
