"""The usage stored on a conversation's agent replies, per conversation agent (`conversations:usage`).

Storage only reads it back: adding it up (and what a cost source means) is the sidecar's business. Every version
of a reply counts, active or not; a reply still being written has no usage yet and counts once it settles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.models import Agent, ConversationAgent, Message
from storage.repositories._common import load_json
from storage.repositories.conversations import require_conversation


@dataclass(frozen=True)
class AgentReplyUsage:
    conversation_agent_id: str
    agent_name: str
    usages: list[dict[str, Any]]  # one per reply that has usage, oldest first


def reply_usage_by_agent(conversation_id: str) -> list[AgentReplyUsage]:
    """Each agent of the conversation, in display order, with the usage of all its replies (RowNotFound for an
    unknown conversation). Agents that have not answered yet are listed with no usages."""
    require_conversation(conversation_id)
    members = (
        ConversationAgent.select(ConversationAgent.id, Agent.name.alias("agent_name"))
        .join(Agent, on=(Agent.id == ConversationAgent.agent_id))
        .where(ConversationAgent.conversation_id == conversation_id)
        .order_by(ConversationAgent.display_order, ConversationAgent.created_at, ConversationAgent.id)
    )
    by_agent: dict[str, AgentReplyUsage] = {
        row.id: AgentReplyUsage(row.id, row.agent_name, []) for row in members.objects()
    }
    replies = (
        Message.select(Message.conversation_agent_id, Message.usage)
        .where(
            (Message.conversation_id == conversation_id)
            & (Message.role == "agent")
            & Message.usage.is_null(False)
        )
        .order_by(Message.created_at, Message.id)
        .tuples()
    )
    for conversation_agent_id, usage in replies:
        member = by_agent.get(conversation_agent_id)
        if member is not None:  # a reply always belongs to a present agent (removal takes its messages)
            member.usages.append(load_json(usage))
    return list(by_agent.values())
