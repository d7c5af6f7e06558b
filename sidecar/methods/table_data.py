"""The data API's wire method names → handlers (merged into the main method table)."""

from __future__ import annotations

from sidecar.methods import agents, conversation_agents, conversations, llm_configs, messages, personalities, roles
from sidecar.services import Handler

DATA_METHODS: dict[str, Handler] = {
    "llmConfigs:list": llm_configs.list_llm_configs,
    "llmConfigs:get": llm_configs.get_llm_config,
    "llmConfigs:create": llm_configs.create_llm_config,
    "llmConfigs:update": llm_configs.update_llm_config,
    "llmConfigs:delete": llm_configs.delete_llm_config,
    "llmConfigs:setApiKey": llm_configs.set_api_key,
    "roles:list": roles.list_roles,
    "roles:get": roles.get_role,
    "roles:create": roles.create_role,
    "roles:update": roles.update_role,
    "roles:delete": roles.delete_role,
    "personalities:list": personalities.list_personalities,
    "personalities:get": personalities.get_personality,
    "personalities:create": personalities.create_personality,
    "personalities:update": personalities.update_personality,
    "personalities:delete": personalities.delete_personality,
    "agents:list": agents.list_agents,
    "agents:get": agents.get_agent,
    "agents:create": agents.create_agent,
    "agents:update": agents.update_agent,
    "agents:delete": agents.delete_agent,
    "conversations:list": conversations.list_conversations,
    "conversations:get": conversations.get_conversation,
    "conversations:create": conversations.create_conversation,
    "conversations:update": conversations.update_conversation,
    "conversations:delete": conversations.delete_conversation,
    "conversationAgents:list": conversation_agents.list_conversation_agents,
    "conversationAgents:add": conversation_agents.add_conversation_agent,
    "conversationAgents:update": conversation_agents.update_conversation_agent,
    "conversationAgents:remove": conversation_agents.remove_conversation_agent,
    "messages:list": messages.list_messages,
    "messages:create": messages.create_message,
    "messages:updateInclusion": messages.update_message_inclusion,
    "messages:delete": messages.delete_message,
}
