"""Agents taking part in a conversation: order, colour, on/off. Removing one removes its messages."""

from __future__ import annotations

from typing import Any

from peewee import IntegrityError, fn

from storage.errors import RowConflict
from storage.ids import IdFactory, to_iso
from storage.models import Agent, ConversationAgent, Message
from storage.repositories._common import get_row, not_null
from storage.repositories.conversations import require_conversation

WHAT = "Conversation agent"
PALETTE_SIZE = 8


def to_wire(row: ConversationAgent, agent_name: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "conversationId": row.conversation_id,
        "agentId": row.agent_id,
        "agentName": agent_name,
        "enabled": bool(row.enabled),
        "displayOrder": row.display_order,
        "color": row.color,
        "addedAt": to_iso(row.created_at),
    }


def default_color(used: list[str]) -> str:
    """The first unused `--agent-N`; when all eight are taken, cycle by how many agents there already are."""
    for n in range(1, PALETTE_SIZE + 1):
        if f"--agent-{n}" not in used:
            return f"--agent-{n}"
    return f"--agent-{(len(used) % PALETTE_SIZE) + 1}"


def _with_name(row: ConversationAgent) -> dict[str, Any]:
    return to_wire(row, Agent.get_by_id(row.agent_id).name)


def list_conversation_agents(conversation_id: str) -> list[dict[str, Any]]:
    require_conversation(conversation_id)
    query = (
        ConversationAgent.select(ConversationAgent, Agent.name.alias("agent_name"))
        .join(Agent, on=(Agent.id == ConversationAgent.agent_id))
        .where(ConversationAgent.conversation_id == conversation_id)
        .order_by(ConversationAgent.display_order, ConversationAgent.created_at, ConversationAgent.id)
    )
    return [to_wire(r, r.agent_name) for r in query.objects()]


def add_conversation_agent(ids: IdFactory, params: dict[str, Any]) -> dict[str, Any]:
    conversation_id, agent_id = params["conversationId"], params["agentId"]
    with ConversationAgent._meta.database.atomic():
        require_conversation(conversation_id)
        agent = get_row(Agent, agent_id, "Agent")
        siblings = ConversationAgent.select().where(ConversationAgent.conversation_id == conversation_id)
        if siblings.where(ConversationAgent.agent_id == agent_id).exists():
            raise RowConflict("This agent is already in the conversation", field="agentId")
        last_order = siblings.select(fn.MAX(ConversationAgent.display_order)).scalar()
        row_id, now = ids.next()
        color = params.get("color")
        display_order = params.get("displayOrder")
        try:
            row = ConversationAgent.create(
                id=row_id,
                conversation_id=conversation_id,
                agent_id=agent_id,
                enabled=params.get("enabled", True),
                display_order=(0 if last_order is None else last_order + 1) if display_order is None else display_order,
                color=default_color([s.color for s in siblings]) if color is None else color,
                created_at=now,
            )
        except IntegrityError:
            raise RowConflict("This agent is already in the conversation", field="agentId") from None
    return to_wire(row, agent.name)


def update_conversation_agent(params: dict[str, Any]) -> dict[str, Any]:
    with ConversationAgent._meta.database.atomic():
        row = get_row(ConversationAgent, params["id"], WHAT)
        if "enabled" in params:
            row.enabled = not_null("enabled", params["enabled"])
        if "displayOrder" in params:
            row.display_order = not_null("displayOrder", params["displayOrder"])
        if "color" in params:
            row.color = not_null("color", params["color"])
        row.save()
        return _with_name(row)


def remove_conversation_agent(conversation_agent_id: str) -> None:
    """The agent's replies and the error notes about it go in the same transaction as the row."""
    with ConversationAgent._meta.database.atomic():
        get_row(ConversationAgent, conversation_agent_id, WHAT)
        Message.delete().where(
            (Message.conversation_agent_id == conversation_agent_id)
            | (Message.about_conversation_agent_id == conversation_agent_id)
        ).execute()
        ConversationAgent.delete().where(ConversationAgent.id == conversation_agent_id).execute()
