"""Messages of a conversation: the data API side (list with paging, create, edit, inclusion, versions, delete).

A reply's versions form a group (CONTRACT §5d): `version_of_id` names the group (its first version's id; null on
that first version), `version` numbers the rows 1..n, and exactly one row of a group is `active`, the one lists,
contexts and search show. User and system rows are never versioned: always version 1, active.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from peewee import fn

from storage.errors import InvalidValue, RowBusy, RowNotFound, RuleBroken
from storage.ids import IdFactory, to_iso
from storage.models import Message
from storage.records import MessageRecord
from storage.repositories._common import check_unicode, get_row, load_json
from storage.repositories.conversations import require_conversation

WHAT = "Message"
MAX_CONTENT_BYTES = 8 * 1024 * 1024
_ALLOWED_CONTROLS = frozenset("\n\r\t")
_IN_CHUNK = 500  # ids per `IN (...)`: far below SQLite's variable limit


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


def to_wire(row: Message, version_count: int | None = None) -> dict[str, Any]:
    """The wire row; `version_count` is looked up when not given (lists pass theirs, from one query)."""
    is_reply = row.role == "agent"
    if is_reply and version_count is None:
        version_count = count_versions([group_of(row)]).get(group_of(row), 1)
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
        "version": row.version if is_reply else None,
        "versionCount": version_count if is_reply else None,
        "active": bool(row.active),
        "editedAt": None if row.edited_at is None else to_iso(row.edited_at),
    }


def to_record(row: Message) -> MessageRecord:
    count = count_versions([group_of(row)]).get(group_of(row), 1) if row.role == "agent" else 1
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
        version=row.version,
        version_count=count,
        version_of_id=row.version_of_id,
        edited_at=row.edited_at,
    )


def group_of(row: Message | MessageRecord) -> str:
    return row.version_of_id or row.id


def count_versions(groups: Iterable[str]) -> dict[str, int]:
    """Group label → its number of versions, for groups with more than their first version (others have 1).

    Versions are numbered 1..n without gaps, so the count is the highest number.
    """
    counts: dict[str, int] = {}
    wanted = list(dict.fromkeys(groups))
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        query = (
            Message.select(Message.version_of_id, Message.version)
            .where(Message.version_of_id.in_(chunk))
            .tuples()
        )
        for group, version in query:
            counts[group] = max(counts.get(group, 1), version)
    return counts


def conversation_version_counts(conversation_id: str) -> dict[str, int]:
    """`count_versions` for every group of one conversation, from its (small) partial index."""
    query = (
        Message.select(Message.version_of_id, Message.version)
        .where((Message.conversation_id == conversation_id) & Message.version_of_id.is_null(False))
        .tuples()
    )
    counts: dict[str, int] = {}
    for group, version in query:
        counts[group] = max(counts.get(group, 1), version)
    return counts


def insert_message(ids: IdFactory, conversation_id: str, role: str, content: str, **columns: Any) -> Message:
    """One new row; id and createdAt come from one `ids.next()` so they sort together."""
    message_id, now = ids.next()
    return Message.create(
        id=message_id, conversation_id=conversation_id, role=role, content=content, created_at=now, **columns
    )


# Conversation order: createdAt, then id, except that a reply's versions stand together in its first version's place
# (they share its createdAt; the group label is that first version's id), oldest version first.
SLOT = fn.COALESCE(Message.version_of_id, Message.id)
CONVERSATION_ORDER = (Message.created_at, SLOT, Message.version)
NEWEST_FIRST = (Message.created_at.desc(), SLOT.desc(), Message.version.desc())


def _older_than(anchor: Message) -> Any:
    slot = group_of(anchor)
    return (Message.created_at < anchor.created_at) | (
        (Message.created_at == anchor.created_at)
        & ((SLOT < slot) | ((SLOT == slot) & (Message.version < anchor.version)))
    )


def list_messages(
    conversation_id: str, limit: int | None = None, before: str | None = None, all_versions: bool = False
) -> list[dict[str, Any]]:
    require_conversation(conversation_id)
    query = Message.select().where(Message.conversation_id == conversation_id)
    if not all_versions:
        query = query.where(Message.active == True)  # noqa: E712 (peewee builds SQL from the comparison)
    if before is not None:
        anchor = Message.get_or_none((Message.id == before) & (Message.conversation_id == conversation_id))
        if anchor is None:
            raise RowNotFound("Message not found in this conversation", id=before, field="before")
        query = query.where(_older_than(anchor))
    if limit is None:
        rows = list(query.order_by(*CONVERSATION_ORDER))
    else:
        rows = list(reversed(list(query.order_by(*NEWEST_FIRST).limit(limit))))
    counts = conversation_version_counts(conversation_id)
    return [to_wire(row, counts.get(group_of(row), 1)) for row in rows]


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


def update_content(ids: IdFactory, message_id: str, content: str) -> dict[str, Any]:
    """`messages:update`: new text for a user, system or settled agent row; the same text changes nothing."""
    check_content(content)
    with Message._meta.database.atomic():
        row = get_row(Message, message_id, WHAT)
        if row.status == "streaming":
            raise RowBusy("The message is still being written; edit it once it has settled", id=message_id)
        if row.content != content:
            row.content = content
            row.edited_at = ids.next()[1]
            row.save()
    return to_wire(row)


def update_inclusion(message_id: str, included: bool) -> dict[str, Any]:
    with Message._meta.database.atomic():
        row = get_row(Message, message_id, WHAT)
        row.included = included
        row.save()
    return to_wire(row)


def delete_message(message_id: str) -> None:
    """One row; for a reply, one version (a trigger renumbers the rest and keeps one of them active)."""
    with Message._meta.database.atomic():
        get_row(Message, message_id, WHAT)
        # Replies keep their row; their replyToId becomes null (FK SET NULL), done by hand for clarity.
        Message.update(reply_to_id=None).where(Message.reply_to_id == message_id).execute()
        Message.delete().where(Message.id == message_id).execute()


def get_version(message_id: str) -> Message:
    """The row of a reply version; a user or system row has no versions (validation)."""
    row = get_row(Message, message_id, WHAT)
    if row.role != "agent":
        raise RuleBroken(f"Only agent replies have versions; this is a {row.role} message", id=message_id, field="id")
    return row


def versions_of(row: Message) -> list[Message]:
    """Every version of the row's reply, oldest (version 1) first."""
    group = group_of(row)
    query = Message.select().where((Message.version_of_id == group) | (Message.id == group))
    return sorted(query, key=lambda version: (version.version, version.id))


def list_versions(message_id: str) -> list[dict[str, Any]]:
    with Message._meta.database.atomic():
        rows = versions_of(get_version(message_id))
    return [to_wire(row, len(rows)) for row in rows]


def activate(message_id: str) -> Message:
    """Make this version the active one of its group (the others inactive), in one transaction."""
    with Message._meta.database.atomic():
        row = get_version(message_id)
        if row.status == "streaming":
            raise RowBusy("That version is still being written; select it once it has settled", id=message_id)
        group = group_of(row)
        members = (Message.version_of_id == group) | (Message.id == group)
        Message.update(active=(Message.id == message_id)).where(members).execute()
        row.active = True
    return row


def select_version(message_id: str) -> dict[str, Any]:
    return to_wire(activate(message_id))

