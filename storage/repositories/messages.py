"""Messages of a conversation: the data API side (list with paging, create, inclusion, delete)."""

from __future__ import annotations

import unicodedata
from typing import Any

from storage.errors import InvalidValue, RowNotFound, RuleBroken
from storage.ids import IdFactory, to_iso
from storage.models import Message
from storage.records import MessageRecord
from storage.repositories._common import check_unicode, get_row, load_json
from storage.repositories.conversations import require_conversation

WHAT = "Message"
MAX_CONTENT_BYTES = 8 * 1024 * 1024
_ALLOWED_CONTROLS = frozenset("\n\r\t")


def check_content(content: str) -> None:
    """The rules a schema cannot express: UTF-8 size, control characters, whitespace-only."""
    check_unicode("content", content)
    if len(content.encode("utf-8")) > MAX_CONTENT_BYTES:
        raise InvalidValue("content", "must be at most 8 MiB of UTF-8")
    # Cc covers C0, DEL and C1; only the three whitespace controls belong in chat text.
    if any(unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS for ch in content):
        raise RuleBroken("Content must not contain control characters other than tab and newlines", field="content")
    if not content.strip():
        raise RuleBroken("Content must not be empty or only whitespace", field="content")


def to_wire(row: Message) -> dict[str, Any]:
    return {
        "id": row.id,
        "conversationId": row.conversation_id,
        "conversationAgentId": row.conversation_agent_id,
        "role": row.role,
        "content": row.content,
        "included": bool(row.included),
        "status": row.status,
        "replyToId": row.reply_to_id,
        "createdAt": to_iso(row.created_at),
        "usage": load_json(row.usage),
        "stopReason": row.stop_reason,
    }


def to_record(row: Message) -> MessageRecord:
    return MessageRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        conversation_agent_id=row.conversation_agent_id,
        role=row.role,
        content=row.content,
        included=bool(row.included),
        status=row.status,
        reply_to_id=row.reply_to_id,
        created_at=row.created_at,
        usage=load_json(row.usage),
        stop_reason=row.stop_reason,
    )


def insert_message(ids: IdFactory, conversation_id: str, role: str, content: str, **columns: Any) -> Message:
    """One new row; id and createdAt come from one `ids.next()` so they sort together."""
    message_id, now = ids.next()
    return Message.create(
        id=message_id, conversation_id=conversation_id, role=role, content=content, created_at=now, **columns
    )


def _older_than(anchor: Message) -> Any:
    return (Message.created_at < anchor.created_at) | (
        (Message.created_at == anchor.created_at) & (Message.id < anchor.id)
    )


def list_messages(conversation_id: str, limit: int | None = None, before: str | None = None) -> list[dict[str, Any]]:
    require_conversation(conversation_id)
    query = Message.select().where(Message.conversation_id == conversation_id)
    if before is not None:
        anchor = Message.get_or_none((Message.id == before) & (Message.conversation_id == conversation_id))
        if anchor is None:
            raise RowNotFound("Message not found in this conversation", id=before, field="before")
        query = query.where(_older_than(anchor))
    if limit is None:
        return [to_wire(r) for r in query.order_by(Message.created_at, Message.id)]
    newest = query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)
    return [to_wire(r) for r in reversed(list(newest))]


def create_message(ids: IdFactory, params: dict[str, Any]) -> dict[str, Any]:
    """A user or system row written by the client; agent rows are only made by the chat engine."""
    check_content(params["content"])
    with Message._meta.database.atomic():
        require_conversation(params["conversationId"])
        row = insert_message(
            ids,
            params["conversationId"],
            params["role"],
            params["content"],
            included=params.get("included", True),
            status="complete",
        )
    return to_wire(row)


def update_inclusion(message_id: str, included: bool) -> dict[str, Any]:
    with Message._meta.database.atomic():
        row = get_row(Message, message_id, WHAT)
        row.included = included
        row.save()
    return to_wire(row)


def delete_message(message_id: str) -> None:
    with Message._meta.database.atomic():
        get_row(Message, message_id, WHAT)
        # Replies keep their row; their replyToId becomes null (FK SET NULL), done by hand for clarity.
        Message.update(reply_to_id=None).where(Message.reply_to_id == message_id).execute()
        Message.delete().where(Message.id == message_id).execute()
