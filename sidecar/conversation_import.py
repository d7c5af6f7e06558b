"""Conversation files in: a JSON export (`ConversationFile`) → the rows of a new conversation, checked first.

Nothing is written here. A file that is not one of ours, or is damaged, is a `validation` error whose `field` says
where in the file (`messages.12.replyTo`). The header (conversation and agents) is checked against the schema; the
messages, which may be 100,000, by hand with the same rules (through jsonschema they would take ~8 s).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sidecar.conversation_export import COLUMN, FORMAT, FORMAT_VERSION
from sidecar.errors import RuleViolation
from sidecar.validation import check_component
from storage.errors import InvalidValue, StorageError
from storage.ids import IdFactory
from storage.repositories._common import check_unicode
from storage.repositories.messages import MAX_CONTENT_BYTES, check_content
from storage.repositories.transfer import ConversationSpec, Member, MessageRow

_STATUSES = frozenset({"complete", "error", "cancelled", "interrupted", "streaming"})
_STOP_REASONS = frozenset({"end", "max_tokens", "content_filter"})
_MESSAGE_KEYS = frozenset({
    "role", "content", "createdAt", "agent", "replyTo", "about", "included", "status", "usage", "stopReason",
    "versionOf", "version", "active", "editedAt",
})  # fmt: skip
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ImportPlan:
    conversation: ConversationSpec
    rows: list[MessageRow]  # MESSAGE_COLUMNS, new ids, file order


class FileProblem(RuleViolation):
    """The imported file is not a conversation export, or is damaged: `field` says where."""

    def __init__(self, field: str, reason: str) -> None:
        field = field or "content"  # the file as a whole
        super().__init__(f"This is not a valid conversation file: {field} {reason}", field=field, reason=reason)


def plan_import(content: str, ids: IdFactory) -> ImportPlan:
    """Check the whole file and turn it into rows with new ids; raises FileProblem before anything is written."""
    document = _document(content)
    header = {**document, "messages": []}  # the messages are checked by hand, below
    problem = check_component("ConversationFile", header) or _lone_surrogate(header, "")
    if problem is not None:
        raise FileProblem(*problem)
    messages = document.get("messages")
    if not isinstance(messages, list):
        raise FileProblem("messages", "must be an array")
    members = [_member(i, entry, ids.new_id()) for i, entry in enumerate(document["agents"])]
    rows = _MessageReader(messages, members, ids).rows()
    return ImportPlan(_conversation_spec(document["conversation"], members), rows)


def _document(content: str) -> dict[str, Any]:
    try:
        document = json.loads(content)
    except ValueError:
        raise FileProblem("content", "is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise FileProblem("format", f'must be "{FORMAT}" (this is not a chat-sidecar conversation export)')
    version = document.get("formatVersion")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise FileProblem("formatVersion", f"is {version}: the file was written by a newer chat-sidecar")
    return document


def _lone_surrogate(value: Any, where: str) -> tuple[str, str] | None:
    """JSON's `\\ud800` escapes decode to text SQLite cannot store: find one in the (small) header."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where, "must be valid Unicode text (no lone surrogates)"
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        problem = _lone_surrogate(str(key), where) or _lone_surrogate(item, f"{where}.{key}" if where else str(key))
        if problem is not None:
            return problem
    return None


def _conversation_spec(conversation: dict[str, Any], members: list[Member]) -> ConversationSpec:
    return ConversationSpec(
        title=conversation["title"],
        chat_mode=conversation["chatMode"],
        auto_settings=conversation.get("autoSettings"),
        created_at=_time("conversation.createdAt", conversation["createdAt"]),
        updated_at=_time("conversation.updatedAt", conversation["updatedAt"]),
        agents=members,
    )


def _member(position: int, entry: dict[str, Any], conversation_agent_id: str) -> Member:
    return Member(
        conversation_agent_id=conversation_agent_id,
        enabled=entry["enabled"],
        display_order=entry["displayOrder"],
        color=entry["color"],
        added_at=_time(f"agents.{position}.addedAt", entry["addedAt"]),
        name=entry["name"],
        model=entry["model"],
        provider=entry["llmConfig"]["provider"],
        llm_config_name=entry["llmConfig"]["name"],
        role=entry["role"],
        personality=entry["personality"],
        system_prompt=entry.get("systemPrompt"),
        personality_behaviors=entry.get("personalityBehaviors"),
        temperature=entry.get("temperature"),
        max_tokens=entry.get("maxTokens"),
        top_p=entry.get("topP"),
        timeout_ms=entry.get("timeoutMs") or 60000,
        context_window=entry.get("contextWindow"),
    )


def _time(where: str, value: Any) -> int:
    """An ISO timestamp of the wire's form → epoch milliseconds (exact: no float on the way)."""
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise FileProblem(where, "must be a timestamp like 2026-11-26T08:00:00.000Z")
    try:
        return (datetime.fromisoformat(value) - _EPOCH) // timedelta(milliseconds=1)
    except ValueError:
        raise FileProblem(where, "must be a real date and time") from None


class _MessageReader:
    """Checks the messages one by one (the rules of `ConversationFileMessage`, plus the references between them)
    and builds their rows."""

    def __init__(self, entries: list[Any], members: list[Member], ids: IdFactory) -> None:
        self.entries = entries
        self.members = members
        self.ids = ids
        self.new_ids: list[str] = []
        self.groups: dict[int, list[int]] = {}  # position of a first version → positions of its versions

    def rows(self) -> list[MessageRow]:
        rows = [self._row(i, entry) for i, entry in enumerate(self.entries)]
        self._check_active_versions(rows)
        return rows

    def _row(self, i: int, entry: Any) -> MessageRow:
        where = f"messages.{i}"
        if not isinstance(entry, dict):
            raise FileProblem(where, "must be an object")
        unknown = next((key for key in entry if key not in _MESSAGE_KEYS), None)
        if unknown is not None:
            raise FileProblem(f"{where}.{unknown}", "is not allowed")
        role = entry.get("role")
        if role not in ("user", "agent", "system"):
            raise FileProblem(f"{where}.role", "must be one of: user, agent, system")
        content = self._content(where, role, entry.get("content"))
        agent = self._agent_of(where, role, entry)
        reply_to = self._earlier(where, "replyTo", entry.get("replyTo"))
        status = self._status(where, role, entry)
        version_of, version, active = self._version(i, where, role, entry, agent, reply_to)
        message_id = self.ids.new_id()
        self.new_ids.append(message_id)
        return (
            message_id,
            None if agent is None else self.members[agent].conversation_agent_id,
            role,
            content,
            self._flag(where, "included", entry.get("included", True)),
            status,
            None if reply_to is None else self.new_ids[reply_to],
            _time(f"{where}.createdAt", entry.get("createdAt")),
            self._usage(where, role, entry.get("usage")),
            self._about(where, role, entry.get("about")),
            self._stop_reason(where, role, entry.get("stopReason")),
            None if version_of is None else self.new_ids[version_of],
            version,
            active,
            None if entry.get("editedAt") is None else _time(f"{where}.editedAt", entry["editedAt"]),
        )

    def _content(self, where: str, role: str, content: Any) -> str:
        if not isinstance(content, str) or not content:
            raise FileProblem(f"{where}.content", "must be a non-empty string")
        try:
            if role == "agent":  # a reply is kept as the model wrote it: only valid, and not too long
                check_unicode("content", content)
                if len(content) * 4 > MAX_CONTENT_BYTES and len(content.encode("utf-8")) > MAX_CONTENT_BYTES:
                    raise InvalidValue("content", "must be at most 8 MiB of UTF-8")
            else:  # user and system rows follow messages:create's rules
                check_content(content)
        except StorageError as exc:
            raise FileProblem(f"{where}.content", exc.extra.get("reason") or exc.message) from None
        return content

    def _agent_of(self, where: str, role: str, entry: dict[str, Any]) -> int | None:
        agent = entry.get("agent")
        if role != "agent":
            if agent is not None:
                raise FileProblem(f"{where}.agent", "is only allowed on agent messages")
            return None
        if not _is_index(agent) or agent >= len(self.members):
            raise FileProblem(f"{where}.agent", f"must be the position of one of the {len(self.members)} agents")
        return int(agent)

    def _earlier(self, where: str, key: str, value: Any) -> int | None:
        if value is None:
            return None
        if not _is_index(value) or value >= len(self.new_ids):
            raise FileProblem(f"{where}.{key}", "must be the position of an earlier message")
        return int(value)

    def _status(self, where: str, role: str, entry: dict[str, Any]) -> str:
        status = entry.get("status", "complete")
        if status not in _STATUSES or (role != "agent" and status != "complete"):
            allowed = ", ".join(sorted(_STATUSES)) if role == "agent" else "complete"
            raise FileProblem(f"{where}.status", f"must be one of: {allowed}")
        return "interrupted" if status == "streaming" else status  # no process is writing it any more

    def _version(
        self, i: int, where: str, role: str, entry: dict[str, Any], agent: int | None, reply_to: int | None
    ) -> tuple[int | None, int, bool]:
        first = self._earlier(where, "versionOf", entry.get("versionOf"))
        active = self._flag(where, "active", entry.get("active", True))
        if role != "agent":
            if first is not None or "version" in entry or not active:
                raise FileProblem(f"{where}.versionOf", "only agent replies have versions")
            return None, 1, True
        if first is None:
            if entry.get("version", 1) != 1:
                raise FileProblem(f"{where}.version", "must be 1 (or absent) on a first version")
            self.groups[i] = [i]
            return None, 1, active
        group = self.groups.get(first)
        base = self.entries[first]
        if group is None or base.get("agent") != agent or base.get("replyTo") != reply_to:
            raise FileProblem(f"{where}.versionOf", "must be the position of the first version of the same reply")
        group.append(i)
        if entry.get("version") != len(group):
            raise FileProblem(f"{where}.version", f"must be {len(group)} (versions are numbered in file order)")
        return first, len(group), active

    def _check_active_versions(self, rows: list[MessageRow]) -> None:
        for first, members in self.groups.items():
            active = [i for i in members if rows[i][COLUMN["active"]]]
            if len(active) != 1:
                raise FileProblem(f"messages.{first}.active", "a reply must have exactly one active version")

    def _flag(self, where: str, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise FileProblem(f"{where}.{key}", "must be a boolean")
        return value

    def _usage(self, where: str, role: str, usage: Any) -> str | None:
        if usage is None:
            return None
        problem = check_component("Usage", usage) if role == "agent" else ("", "is only allowed on agent messages")
        if problem is not None:
            field, reason = problem
            raise FileProblem(".".join(part for part in (f"{where}.usage", field) if part), reason)
        return json.dumps(usage, ensure_ascii=False, separators=(",", ":"))

    def _about(self, where: str, role: str, about: Any) -> str | None:
        if about is None:
            return None
        if role != "system" or not _is_index(about) or about >= len(self.members):
            raise FileProblem(f"{where}.about", "must be the position of an agent, on a system message")
        return self.members[about].conversation_agent_id

    def _stop_reason(self, where: str, role: str, stop_reason: Any) -> str | None:
        if stop_reason is None:
            return None
        if role != "agent" or stop_reason not in _STOP_REASONS:
            raise FileProblem(f"{where}.stopReason", "must be one of: " + ", ".join(sorted(_STOP_REASONS)))
        return str(stop_reason)


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
