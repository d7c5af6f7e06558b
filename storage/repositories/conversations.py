"""Conversations; deleting one takes its conversation agents and messages with it."""

from __future__ import annotations

from typing import Any

from storage.ids import IdFactory, to_iso
from storage.models import Conversation, ConversationAgent, Message
from storage.records import ChatSettings
from storage.repositories._common import dump_json, get_row, load_json, not_null, require_text, stamp_if_changed

WHAT = "Conversation"
DEFAULT_TITLE = "New Conversation"


DEFAULT_AUTO_SETTINGS = {"maxMessages": 12, "delayMs": 0, "style": "sequential"}


def to_wire(row: Conversation) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "chatMode": row.chat_mode,
        "autoSettings": _auto_settings(row),
        "createdAt": to_iso(row.created_at),
        "updatedAt": to_iso(row.updated_at),
    }


def _auto_settings(row: Conversation) -> dict[str, Any]:
    return {**DEFAULT_AUTO_SETTINGS, **(load_json(row.auto_settings) or {})}


def _merged_auto_settings(row: Conversation | None, given: dict[str, Any] | None) -> str | None:
    """Given keys over the current (or default) settings; stored only when they differ from the defaults."""
    current = _auto_settings(row) if row is not None else dict(DEFAULT_AUTO_SETTINGS)
    merged = {**current, **(given or {})}
    return None if merged == DEFAULT_AUTO_SETTINGS else dump_json(merged)


def chat_settings(conversation_id: str) -> ChatSettings:
    row = get_row(Conversation, conversation_id, WHAT)
    auto = _auto_settings(row)
    return ChatSettings(row.chat_mode, auto["maxMessages"], auto["delayMs"], auto["style"])


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
        auto_settings=_merged_auto_settings(None, params.get("autoSettings")),
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
        if "autoSettings" in params:
            row.auto_settings = _merged_auto_settings(row, not_null("autoSettings", params["autoSettings"]))
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
