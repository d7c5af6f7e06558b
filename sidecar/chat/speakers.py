"""Which agents answer (CONTRACT §5 and §5b): round-robin rotation, the auto-mode queue, `@Name`, and `SKIP`.

Pure functions over participants and stored rows: the rotation is derived from the saved replies, so it survives
a restart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from storage.records import MessageRecord, ParticipantRecord

# `SKIP`, any case, with trailing full stops or exclamation marks ("SKIP." counts, "SKIP because…" does not).
_SKIP = re.compile(r"\s*skip[.!]*\s*", re.IGNORECASE)


def is_skip(text: str) -> bool:
    return _SKIP.fullmatch(text) is not None


def could_become_skip(text: str) -> bool:
    """Text so far that a `SKIP` answer could still start with: held back until the reply says otherwise."""
    stripped = text.lstrip()
    return is_skip(text) or "skip".startswith(stripped.lower()) or not stripped


def in_order(participants: Sequence[ParticipantRecord]) -> list[ParticipantRecord]:
    """Enabled agents in `displayOrder, addedAt` order (participants are loaded in that order)."""
    return [p for p in participants if p.enabled]


def last_speaker(history: Sequence[MessageRecord]) -> str | None:
    """The conversation agent that last completed a reply (an error does not move the rotation on)."""
    for row in reversed(history):
        if row.role == "agent" and row.status == "complete" and row.conversation_agent_id is not None:
            return row.conversation_agent_id
    return None


def round_robin_next(enabled: Sequence[ParticipantRecord], history: Sequence[MessageRecord]) -> ParticipantRecord:
    """The enabled agent after the one that last completed a reply, wrapping; the first when none has."""
    return rotation(enabled, last_speaker(history))[0]


def rotation(enabled: Sequence[ParticipantRecord], after: str | None) -> list[ParticipantRecord]:
    """The enabled agents starting after `after` (a conversation agent id), wrapping."""
    ids = [p.conversation_agent_id for p in enabled]
    start = ids.index(after) + 1 if after in ids else 0
    return [*enabled[start:], *enabled[:start]]


def mentioned(enabled: Sequence[ParticipantRecord], text: str, author: str | None = None) -> list[ParticipantRecord]:
    """Enabled agents named as `@Name` in `text` (whole name, any case), in the order they are named; the
    author of the text does not count. A name with spaces matches as a whole."""
    found: list[tuple[int, ParticipantRecord]] = []
    for participant in enabled:
        if participant.conversation_agent_id == author:
            continue
        pattern = r"(?<![\w@])@" + re.escape(participant.agent_name) + r"(?!\w)"
        match = re.search(pattern, text, re.IGNORECASE)
        if match is not None:
            found.append((match.start(), participant))
    return [participant for _, participant in sorted(found, key=lambda pair: pair[0])]


def promote(queue: list[ParticipantRecord], named: Sequence[ParticipantRecord]) -> list[ParticipantRecord]:
    """Move the named agents to the front of the queue, in the order they were named."""
    named_ids = [p.conversation_agent_id for p in named]
    front = [p for name_id in named_ids for p in queue if p.conversation_agent_id == name_id]
    return [*front, *(p for p in queue if p.conversation_agent_id not in named_ids)]
