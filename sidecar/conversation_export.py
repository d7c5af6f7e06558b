"""Conversation files out: a stored conversation → a JSON export (everything an import needs) or a Markdown transcript.

Pure functions over `storage.repositories.transfer` values. The JSON format is `ConversationFile` in
schema/openrpc.json: messages refer to agents and to earlier messages by their position in the file (not by id),
and leave out fields at their defaults, so 100,000 short messages fit in one 16 MiB frame.
"""

from __future__ import annotations

import json
import re
from typing import Any

from storage.ids import to_iso
from storage.repositories.transfer import MESSAGE_COLUMNS, ConversationDump, Member, MessageRow

FORMAT = "chat-sidecar.conversation"
FORMAT_VERSION = 1
MIME_TYPES = {"json": "application/json", "markdown": "text/markdown"}
EXTENSIONS = {"json": "json", "markdown": "md"}
COLUMN = {name: index for index, name in enumerate(MESSAGE_COLUMNS)}  # a stored message's values by column name
_UNSAFE_IN_FILENAME = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')
MAX_FILENAME_STEM = 100


def export_file(dump: ConversationDump, file_format: str, exported_at: int) -> dict[str, str]:
    """`{filename, mimeType, content}` for `conversations:export`."""
    content = to_json(dump, exported_at) if file_format == "json" else to_markdown(dump, exported_at)
    return {
        "filename": f"{_filename_stem(dump.conversation['title'])}.{EXTENSIONS[file_format]}",
        "mimeType": MIME_TYPES[file_format],
        "content": content,
    }


def _filename_stem(title: str) -> str:
    stem = _UNSAFE_IN_FILENAME.sub("_", title).strip(" ._")[:MAX_FILENAME_STEM].strip(" ._")
    return stem or "conversation"


# --- JSON out ----------------------------------------------------------------------------------------------------


def to_json(dump: ConversationDump, exported_at: int) -> str:
    conversation = dump.conversation
    document = {
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
        "exportedAt": to_iso(exported_at),
        "conversation": {
            key: conversation[key] for key in ("title", "chatMode", "autoSettings", "createdAt", "updatedAt")
            if key in conversation
        },
        "agents": [_agent_entry(member) for member in dump.members],
        "messages": [],
    }  # fmt: skip
    # Indented, except one line per message: readable, and about as small as compact JSON for a long conversation.
    head = json.dumps(document, ensure_ascii=False, indent=1).removesuffix(' "messages": []\n}')
    lines = [json.dumps(entry, ensure_ascii=False, separators=(",", ":")) for entry in _message_entries(dump)]
    return head + (' "messages": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n" if lines else ' "messages": []\n}\n')


def _agent_entry(member: Member) -> dict[str, Any]:
    return {
        "name": member.name,
        "model": member.model,
        "llmConfig": {"name": member.llm_config_name, "provider": member.provider},
        "role": member.role,
        "personality": member.personality,
        "systemPrompt": member.system_prompt,
        "personalityBehaviors": member.personality_behaviors,
        "temperature": member.temperature,
        "maxTokens": member.max_tokens,
        "topP": member.top_p,
        "timeoutMs": member.timeout_ms,
        "contextWindow": member.context_window,
        "enabled": member.enabled,
        "displayOrder": member.display_order,
        "color": member.color,
        "addedAt": to_iso(member.added_at),
    }


def _message_entries(dump: ConversationDump) -> list[dict[str, Any]]:
    agent_index = {member.conversation_agent_id: i for i, member in enumerate(dump.members)}
    position = {row[COLUMN["id"]]: i for i, row in enumerate(dump.messages)}
    first_of_group: dict[str, int] = {}  # group label → position of its lowest version in the file
    entries = []
    for i, row in enumerate(dump.messages):
        entry = _message_entry(row, agent_index, position)
        if row[COLUMN["role"]] == "agent":
            group = row[COLUMN["version_of_id"]] or row[COLUMN["id"]]
            if group in first_of_group:  # later versions follow the first: same createdAt, newer ids
                entry["versionOf"] = first_of_group[group]
                entry["version"] = row[COLUMN["version"]]
            else:
                first_of_group[group] = i
            if not row[COLUMN["active"]]:
                entry["active"] = False
        entries.append(entry)
    return entries


def _message_entry(row: MessageRow, agent_index: dict[str, int], position: dict[str, int]) -> dict[str, Any]:
    value = dict(zip(MESSAGE_COLUMNS, row, strict=True))
    entry: dict[str, Any] = {
        "role": value["role"], "content": value["content"], "createdAt": to_iso(value["created_at"])
    }  # fmt: skip
    if value["conversation_agent_id"] is not None:
        entry["agent"] = agent_index[value["conversation_agent_id"]]
    if value["reply_to_id"] in position:
        entry["replyTo"] = position[value["reply_to_id"]]
    if value["about_conversation_agent_id"] in agent_index:
        entry["about"] = agent_index[value["about_conversation_agent_id"]]
    if not value["included"]:
        entry["included"] = False
    if value["status"] != "complete":
        entry["status"] = value["status"]
    if value["usage"] is not None:
        entry["usage"] = json.loads(value["usage"])
    if value["stop_reason"] is not None:
        entry["stopReason"] = value["stop_reason"]
    if value["edited_at"] is not None:
        entry["editedAt"] = to_iso(value["edited_at"])
    return entry


# --- Markdown out ------------------------------------------------------------------------------------------------


def to_markdown(dump: ConversationDump, exported_at: int) -> str:
    """A readable transcript: the title, who took part, then the active version of every message, in order."""
    conversation = dump.conversation
    names = {member.conversation_agent_id: member for member in dump.members}
    lines = [
        f"# {_one_line(conversation['title'])}",
        "",
        f"Created {_readable_time(conversation['createdAt'])} · exported {_readable_time(to_iso(exported_at))} · "
        f"mode: {conversation['chatMode']}",
        "",
        "## Participants",
        "",
    ]
    if dump.members:
        lines += ["| Agent | Role | Personality | Model |", "|---|---|---|---|"]
        lines += [
            f"| {_cell(m.name)} | {_cell(m.role['name'])} | {_cell(m.personality['name'])} | "
            f"{_cell(m.model)} ({_cell(m.provider)}){'' if m.enabled else ' · disabled'} |"
            for m in dump.members
        ]
    else:
        lines.append("No agents.")
    lines += ["", "## Messages", ""]
    counts: dict[str, int] = {}
    for row in dump.messages:
        if row[COLUMN["role"]] == "agent":
            group = row[COLUMN["version_of_id"]] or row[COLUMN["id"]]
            counts[group] = max(counts.get(group, 1), row[COLUMN["version"]])
    active = [row for row in dump.messages if row[COLUMN["active"]]]
    if not active:
        lines += ["No messages.", ""]
    for row in active:
        count = counts.get(row[COLUMN["version_of_id"]] or row[COLUMN["id"]], 1)
        lines += [f"### {_heading(row, names)}", "", *_notes(row, count), row[COLUMN["content"]].rstrip("\n"), ""]
    return "\n".join(lines)


def _heading(row: MessageRow, members: dict[str, Member]) -> str:
    role = row[COLUMN["role"]]
    when = _readable_time(to_iso(row[COLUMN["created_at"]]))
    if role == "user":
        return f"You · {when}"
    if role == "system":
        return f"System · {when}"
    member = members.get(row[COLUMN["conversation_agent_id"]])
    who = f"{_one_line(member.name)} ({_one_line(member.role['name'])})" if member is not None else "Unknown agent"
    return f"{who} · {when}"


def _notes(row: MessageRow, version_count: int) -> list[str]:
    notes = []
    if row[COLUMN["role"]] == "agent" and version_count > 1:
        notes.append(f"version {row[COLUMN['version']]} of {version_count}")
    if row[COLUMN["edited_at"]] is not None:
        notes.append(f"edited {_readable_time(to_iso(row[COLUMN['edited_at']]))}")
    if row[COLUMN["status"]] != "complete":
        notes.append(row[COLUMN["status"]])
    if not row[COLUMN["included"]]:
        notes.append("left out of the agents' context")
    return [f"*{' · '.join(notes)}*", ""] if notes else []


def _readable_time(iso: str) -> str:
    return iso[:10] + " " + iso[11:19] + " UTC"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    return _one_line(text).replace("|", "\\|")
