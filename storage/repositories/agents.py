"""Agents: a named participant bound to an LLM config, a model, a role and a personality."""

from __future__ import annotations

from typing import Any

from peewee import Model

from storage.errors import RowConflict
from storage.ids import IdFactory, to_iso
from storage.models import Agent, ConversationAgent, LlmConfig, Personality, Role
from storage.repositories._common import (
    dump_json,
    get_row,
    load_json,
    not_null,
    optional_text,
    require_text,
    stamp_if_changed,
)

WHAT = "Agent"

# wire name -> (model, what) of each reference an agent must hold
_REFERENCES: dict[str, tuple[type[Model], str]] = {
    "llmConfigId": (LlmConfig, "LLM config"),
    "roleId": (Role, "Role"),
    "personalityId": (Personality, "Personality"),
}
_COLUMNS = {"llmConfigId": "llm_config_id", "roleId": "role_id", "personalityId": "personality_id"}
# optional numbers: wire name -> column; null clears them
_OPTIONAL_NUMBERS = {
    "temperature": "temperature",
    "maxTokens": "max_tokens",
    "topP": "top_p",
    "contextWindow": "context_window",
}


def to_wire(row: Agent) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "llmConfigId": row.llm_config_id,
        "model": row.model,
        "roleId": row.role_id,
        "personalityId": row.personality_id,
        "systemPrompt": row.system_prompt,
        "personalityBehaviors": load_json(row.personality_behaviors),
        "temperature": row.temperature,
        "maxTokens": row.max_tokens,
        "topP": row.top_p,
        "timeoutMs": row.timeout_ms,
        "contextWindow": row.context_window,
        "createdAt": to_iso(row.created_at),
        "updatedAt": to_iso(row.updated_at),
    }


def _check_reference(field: str, row_id: str) -> str:
    model, what = _REFERENCES[field]
    get_row(model, row_id, what)
    return row_id


def list_agents() -> list[dict[str, Any]]:
    return [to_wire(r) for r in Agent.select().order_by(Agent.created_at, Agent.id)]


def get_agent(agent_id: str) -> dict[str, Any]:
    return to_wire(get_row(Agent, agent_id, WHAT))


def create_agent(ids: IdFactory, params: dict[str, Any]) -> dict[str, Any]:
    agent_id, now = ids.next()
    with Agent._meta.database.atomic():
        row = Agent.create(
            id=agent_id,
            name=require_text("name", params["name"]),
            model=require_text("model", params["model"]),
            **{_COLUMNS[f]: _check_reference(f, params[f]) for f in _REFERENCES},
            system_prompt=optional_text("systemPrompt", params.get("systemPrompt")),
            personality_behaviors=dump_json(params.get("personalityBehaviors")),
            **{col: params.get(f) for f, col in _OPTIONAL_NUMBERS.items()},
            timeout_ms=params.get("timeoutMs") or 60000,
            created_at=now,
            updated_at=now,
        )
    return to_wire(row)


def update_agent(ids: IdFactory, agent_id: str, params: dict[str, Any]) -> dict[str, Any]:
    with Agent._meta.database.atomic():
        row = get_row(Agent, agent_id, WHAT)
        before = dict(row.__data__)
        if "name" in params:
            row.name = require_text("name", not_null("name", params["name"]))
        if "model" in params:
            row.model = require_text("model", not_null("model", params["model"]))
        for field, column in _COLUMNS.items():
            if field in params:
                setattr(row, column, _check_reference(field, not_null(field, params[field])))
        if "systemPrompt" in params:
            row.system_prompt = optional_text("systemPrompt", params["systemPrompt"])
        if "personalityBehaviors" in params:
            row.personality_behaviors = dump_json(params["personalityBehaviors"])
        for field, column in _OPTIONAL_NUMBERS.items():
            if field in params:
                setattr(row, column, params[field])
        if "timeoutMs" in params:
            row.timeout_ms = params["timeoutMs"] or 60000  # null restores the default
        if stamp_if_changed(row, before, ids):
            row.save()
    return to_wire(row)


def delete_agent(agent_id: str) -> None:
    with Agent._meta.database.atomic():
        row = get_row(Agent, agent_id, WHAT)
        uses = ConversationAgent.select().where(ConversationAgent.agent_id == agent_id).count()
        if uses:
            raise RowConflict(f"This agent is in {uses} conversation(s); remove it from them first", id=agent_id)
        row.delete_instance()
