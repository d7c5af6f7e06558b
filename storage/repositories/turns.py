"""What the chat engine reads and writes during a turn; returns `storage.records` values, never models."""

from __future__ import annotations

from typing import Any

from storage.ids import IdFactory
from storage.models import Agent, ConversationAgent, LlmConfig, Message, Personality, Role
from storage.records import MessageRecord, ParticipantRecord
from storage.repositories import llm_configs, personalities, roles
from storage.repositories._common import dump_json, load_json
from storage.repositories.conversations import require_conversation
from storage.repositories.messages import check_content, insert_message, to_record


def _participant(ca: ConversationAgent, agent: Agent) -> ParticipantRecord:
    config = LlmConfig.get_or_none(LlmConfig.id == agent.llm_config_id)
    return ParticipantRecord(
        conversation_agent_id=ca.id,
        conversation_id=ca.conversation_id,
        agent_id=agent.id,
        agent_name=agent.name,
        enabled=bool(ca.enabled),
        display_order=ca.display_order,
        model=agent.model,
        role=roles.to_record(Role.get_by_id(agent.role_id)),
        personality=personalities.to_record(Personality.get_by_id(agent.personality_id)),
        llm_config=None if config is None else llm_configs.to_record(config),
        system_prompt=agent.system_prompt,
        personality_behaviors=load_json(agent.personality_behaviors),
        temperature=agent.temperature,
        max_tokens=agent.max_tokens,
        top_p=agent.top_p,
        timeout_ms=agent.timeout_ms,
    )


def load_participants(conversation_id: str) -> list[ParticipantRecord]:
    """Every conversation agent, enabled or not, in display order, fully resolved."""
    with Message._meta.database.atomic():  # one consistent snapshot across the lookups
        require_conversation(conversation_id)
        query = (
            ConversationAgent.select(ConversationAgent, Agent)
            .join(Agent, on=(Agent.id == ConversationAgent.agent_id), attr="agent")
            .where(ConversationAgent.conversation_id == conversation_id)
            .order_by(ConversationAgent.display_order, ConversationAgent.created_at, ConversationAgent.id)
        )
        return [_participant(ca, ca.agent) for ca in query]


def load_history(conversation_id: str) -> list[MessageRecord]:
    query = Message.select().where(Message.conversation_id == conversation_id).order_by(Message.created_at, Message.id)
    return [to_record(r) for r in query]


def get_message(message_id: str) -> MessageRecord | None:
    row = Message.get_or_none(Message.id == message_id)
    return None if row is None else to_record(row)


def create_reply(
    ids: IdFactory, conversation_id: str, conversation_agent_id: str, reply_to_id: str, content: str
) -> MessageRecord:
    """The agent's row, made when its first text arrives; `streaming` until `finish_reply`."""
    row = insert_message(
        ids,
        conversation_id,
        "agent",
        content,
        conversation_agent_id=conversation_agent_id,
        reply_to_id=reply_to_id,
        status="streaming",
    )
    return to_record(row)


def update_reply(message_id: str, content: str) -> None:
    Message.update(content=content).where(Message.id == message_id).execute()


def finish_reply(message_id: str, status: str, content: str, usage: dict[str, Any] | None) -> None:
    Message.update(content=content, status=status, usage=dump_json(usage)).where(Message.id == message_id).execute()


def add_system_message(
    ids: IdFactory,
    conversation_id: str,
    content: str,
    reply_to_id: str | None,
    about_conversation_agent_id: str | None,
) -> MessageRecord:
    row = insert_message(
        ids,
        conversation_id,
        "system",
        content,
        reply_to_id=reply_to_id,
        about_conversation_agent_id=about_conversation_agent_id,
        status="complete",
    )
    return to_record(row)


def add_user_message(ids: IdFactory, conversation_id: str, content: str) -> MessageRecord:
    """Same rules as `messages:create` with role user."""
    check_content(content)
    with Message._meta.database.atomic():
        require_conversation(conversation_id)
        row = insert_message(ids, conversation_id, "user", content, status="complete")
    return to_record(row)


def find_reply(conversation_agent_id: str, reply_to_id: str) -> MessageRecord | None:
    """That agent's reply to that trigger, the newest if (unusually) there are several."""
    row = (
        Message.select()
        .where((Message.conversation_agent_id == conversation_agent_id) & (Message.reply_to_id == reply_to_id))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .first()
    )
    return None if row is None else to_record(row)


def delete_turn_rows(conversation_agent_id: str, reply_to_id: str) -> None:
    """Clear one agent's failed attempt at one turn: its unfinished reply and its error note(s)."""
    with Message._meta.database.atomic():
        Message.delete().where(
            (Message.conversation_agent_id == conversation_agent_id)
            & (Message.reply_to_id == reply_to_id)
            & (Message.status != "complete")
        ).execute()
        Message.delete().where(
            (Message.about_conversation_agent_id == conversation_agent_id) & (Message.reply_to_id == reply_to_id)
        ).execute()


def mark_interrupted() -> int:
    """Rows left `streaming` by a process that died mid-reply; returns how many were marked."""
    return Message.update(status="interrupted").where(Message.status == "streaming").execute()
