"""A whole conversation out (`conversations:export`) and in (`conversations:import`), as plain values.

The file formats live above storage (`sidecar.conversation_export`, `sidecar.conversation_import`); here are the
reads and the writes.

An import runs in three kinds of unit, so a large one never holds the query lane for long before its end: a
private staging table (`open_staging`), filled in chunks (`stage_messages`), each chunk a short unit of its own;
then `import_conversation`, one transaction that matches or creates the agents and copies every staged row in one
statement (so FTS5 indexes them in one pass, not row by row). Nothing is visible to others before that commit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from storage.ids import IdFactory
from storage.models import Agent, Conversation, ConversationAgent, LlmConfig, Message, Personality, Role
from storage.repositories import agents, conversations, llm_configs, personalities, roles
from storage.repositories._common import load_json
from storage.repositories.conversations import require_conversation
from storage.repositories.messages import CONVERSATION_ORDER

DEMO_PROVIDER = "demo"
DEMO_CONFIG_NAME = "Demo (offline)"


@dataclass(frozen=True)
class Member:
    """One conversation agent with its agent and what that agent refers to, by value (no secrets). On import, the
    agent is matched by name or created from these values, and `conversation_agent_id` is the new seat's id (made
    by the caller, as the staged messages already refer to it)."""

    conversation_agent_id: str
    enabled: bool
    display_order: int
    color: str
    added_at: int
    name: str
    model: str
    provider: str
    llm_config_name: str
    role: dict[str, Any]  # {name, description, systemPrompt}
    personality: dict[str, Any]  # {name, behaviors, customInstructions}
    system_prompt: str | None
    personality_behaviors: dict[str, int] | None
    temperature: float | None
    max_tokens: int | None
    top_p: float | None
    timeout_ms: int
    context_window: int | None = None  # the agent's own window; None: the model catalogue's


# One message as stored, in this order (MESSAGE_COLUMNS); `usage` is the stored JSON text.
MESSAGE_COLUMNS = (
    "id", "conversation_agent_id", "role", "content", "included", "status", "reply_to_id", "created_at", "usage",
    "about_conversation_agent_id", "stop_reason", "version_of_id", "version", "active", "edited_at",
)  # fmt: skip
MessageRow = tuple[Any, ...]


@dataclass(frozen=True)
class ConversationDump:
    conversation: dict[str, Any]  # the wire row
    members: list[Member]  # display order
    messages: list[MessageRow]  # every version, createdAt then id order


def read_conversation(conversation_id: str) -> ConversationDump:
    """Everything an export needs, from one snapshot."""
    with Message._meta.database.atomic():
        conversation = conversations.to_wire(require_conversation(conversation_id))
        seats = (
            ConversationAgent.select()
            .where(ConversationAgent.conversation_id == conversation_id)
            .order_by(ConversationAgent.display_order, ConversationAgent.created_at, ConversationAgent.id)
        )
        members = [_member(seat) for seat in seats]
        columns = [getattr(Message, name) for name in MESSAGE_COLUMNS]
        query = (
            Message.select(*columns)
            .where(Message.conversation_id == conversation_id)
            .order_by(*CONVERSATION_ORDER)
            .tuples()
        )
        return ConversationDump(conversation, members, list(query))


def _member(seat: ConversationAgent) -> Member:
    agent = Agent.get_by_id(seat.agent_id)
    config = LlmConfig.get_by_id(agent.llm_config_id)  # the foreign keys RESTRICT: these rows exist
    role = Role.get_by_id(agent.role_id)
    personality = Personality.get_by_id(agent.personality_id)
    return Member(
        conversation_agent_id=seat.id,
        enabled=bool(seat.enabled),
        display_order=seat.display_order,
        color=seat.color,
        added_at=seat.created_at,
        name=agent.name,
        model=agent.model,
        provider=config.provider,
        llm_config_name=config.custom_name,
        role={"name": role.name, "description": role.description, "systemPrompt": role.system_prompt},
        personality={
            "name": personality.name,
            "behaviors": load_json(personality.behaviors) or {},
            "customInstructions": personality.custom_instructions,
        },
        system_prompt=agent.system_prompt,
        personality_behaviors=load_json(agent.personality_behaviors),
        temperature=agent.temperature,
        max_tokens=agent.max_tokens,
        top_p=agent.top_p,
        timeout_ms=agent.timeout_ms,
        context_window=agent.context_window,
    )


# --- import ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationSpec:
    title: str
    chat_mode: str
    auto_settings: dict[str, Any] | None
    created_at: int
    updated_at: int
    agents: list[Member]


# Staged rows: MESSAGE_COLUMNS with new ids; the conversation id is filled in by `import_conversation`.
_STAGED = ", ".join(MESSAGE_COLUMNS)


def open_staging() -> str:
    """A private (per-connection, never-written-to-disk-file) table for one import's rows; returns its name."""
    name = f"import_{secrets.token_hex(8)}"
    Message._meta.database.execute_sql(f"CREATE TEMP TABLE {name} ({_STAGED})")
    return name


def stage_messages(table: str, rows: list[MessageRow]) -> None:
    marks = ", ".join("?" * len(MESSAGE_COLUMNS))
    database = Message._meta.database
    with database.atomic():
        database.cursor().executemany(f"INSERT INTO temp.{table} ({_STAGED}) VALUES ({marks})", rows)


def drop_staging(table: str) -> None:
    Message._meta.database.execute_sql(f"DROP TABLE IF EXISTS temp.{table}")


def import_conversation(ids: IdFactory, spec: ConversationSpec, table: str) -> dict[str, Any]:
    """The conversation, its agents (matched by name or created) and every staged message, in one transaction."""
    database = Message._meta.database
    with database.atomic():
        params: dict[str, Any] = {"title": spec.title, "chatMode": spec.chat_mode}
        if spec.auto_settings is not None:
            params["autoSettings"] = spec.auto_settings
        conversation_id = conversations.create_conversation(ids, params)["id"]
        # The file's timestamps are kept: an import restores a conversation as it was.
        Conversation.update(created_at=spec.created_at, updated_at=spec.updated_at).where(
            Conversation.id == conversation_id
        ).execute()
        taken: set[str] = set()
        for agent in spec.agents:
            agent_id = _match_agent(ids, agent, taken)
            taken.add(agent_id)
            ConversationAgent.create(
                id=agent.conversation_agent_id,
                conversation_id=conversation_id,
                agent_id=agent_id,
                enabled=agent.enabled,
                display_order=agent.display_order,
                color=agent.color,
                created_at=agent.added_at,
            )
        database.execute_sql(
            f"INSERT INTO messages (conversation_id, {_STAGED}) SELECT ?, {_STAGED} FROM temp.{table} ORDER BY rowid",
            (conversation_id,),
        )
        return conversations.to_wire(require_conversation(conversation_id))


def _match_agent(ids: IdFactory, spec: Member, taken: set[str]) -> str:
    """An existing agent of that name not already in this conversation (the oldest), else a new one."""
    query = Agent.select(Agent.id).where(Agent.name == spec.name).order_by(Agent.created_at, Agent.id).tuples()
    for (agent_id,) in query:
        if agent_id not in taken:
            return str(agent_id)
    params = {
        "name": spec.name,
        "model": spec.model,
        "llmConfigId": _config_for(ids, spec.provider, spec.llm_config_name),
        "roleId": _role_for(ids, spec.role),
        "personalityId": _personality_for(ids, spec.personality),
        "systemPrompt": spec.system_prompt,
        "personalityBehaviors": spec.personality_behaviors,
        "temperature": spec.temperature,
        "maxTokens": spec.max_tokens,
        "topP": spec.top_p,
        "timeoutMs": spec.timeout_ms,
        "contextWindow": spec.context_window,
    }
    return str(agents.create_agent(ids, params)["id"])


def _config_for(ids: IdFactory, provider: str, name: str) -> str:
    """The config of that name and provider, else the first of that provider, else a demo config (made if none)."""
    ordered = LlmConfig.select().order_by(LlmConfig.created_at, LlmConfig.id)
    configs = list(ordered)
    for wanted in (
        lambda c: c.provider == provider and c.custom_name == name,
        lambda c: c.provider == provider,
        lambda c: c.provider == DEMO_PROVIDER,
    ):
        found = next((c for c in configs if wanted(c)), None)
        if found is not None:
            return str(found.id)
    names = {c.custom_name for c in configs}
    custom_name = next(
        n for n in (DEMO_CONFIG_NAME, *(f"{DEMO_CONFIG_NAME} {i}" for i in range(2, len(names) + 3))) if n not in names
    )
    return str(llm_configs.create_llm_config(ids, {"customName": custom_name, "provider": DEMO_PROVIDER})["id"])


def _role_for(ids: IdFactory, role: dict[str, Any]) -> str:
    found = Role.select(Role.id).where(Role.name == role["name"]).order_by(Role.created_at, Role.id).first()
    return str(found.id) if found is not None else str(roles.create_role(ids, role)["id"])


def _personality_for(ids: IdFactory, personality: dict[str, Any]) -> str:
    found = (
        Personality.select(Personality.id)
        .where(Personality.name == personality["name"])
        .order_by(Personality.created_at, Personality.id)
        .first()
    )
    return str(found.id) if found is not None else str(personalities.create_personality(ids, personality)["id"])
