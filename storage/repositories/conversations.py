"""Conversations; deleting one takes its conversation agents and messages with it."""

from __future__ import annotations

from typing import Any

from storage.ids import IdFactory, to_iso
from storage.models import Conversation, ConversationAgent, Message
from storage.repositories._common import get_row, not_null, require_text, stamp_if_changed

WHAT = "Conversation"
DEFAULT_TITLE = "New Conversation"


def to_wire(row: Conversation) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "chatMode": row.chat_mode,
        "createdAt": to_iso(row.created_at),
        "updatedAt": to_iso(row.updated_at),
    }


def list_conversations() -> list[dict[str, Any]]:
    query = Conversation.select().order_by(Conversation.created_at.desc(), Conversation.id.desc())
    return [to_wire(r) for r in query]


def get_conversation(conversation_id: str) -> dict[str, Any]:
    return to_wire(get_row(Conversation, conversation_id, WHAT))


def require_conversation(conversation_id: str) -> Conversation:
    return get_row(Conversation, conversation_id, WHAT)


def create_conversation(ids: IdFactory, params: dict[str, Any]) -> dict[str, Any]:
    conversation_id, now = ids.next()
    title = params.get("title")
    row = Conversation.create(
        id=conversation_id,
        title=DEFAULT_TITLE if title is None else require_text("title", title),
        chat_mode=params.get("chatMode") or "manual",
        created_at=now,
        updated_at=now,
    )
    return to_wire(row)


def update_conversation(ids: IdFactory, conversation_id: str, params: dict[str, Any]) -> dict[str, Any]:
    with Conversation._meta.database.atomic():
        row = get_row(Conversation, conversation_id, WHAT)
        before = dict(row.__data__)
        if "title" in params:
            row.title = require_text("title", not_null("title", params["title"]))
        if "chatMode" in params:
            row.chat_mode = not_null("chatMode", params["chatMode"])
        if stamp_if_changed(row, before, ids):
            row.save()
    return to_wire(row)


def delete_conversation(conversation_id: str) -> None:
    # The FKs cascade too; deleting explicitly keeps the rule true even on a connection without foreign_keys.
    with Conversation._meta.database.atomic():
        get_row(Conversation, conversation_id, WHAT)
        Message.delete().where(Message.conversation_id == conversation_id).execute()
        ConversationAgent.delete().where(ConversationAgent.conversation_id == conversation_id).execute()
        Conversation.delete().where(Conversation.id == conversation_id).execute()
