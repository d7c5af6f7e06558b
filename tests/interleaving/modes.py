"""What a conversation's mode could have been when a turn read it (CONTRACT §5 "Which agents answer", §5b).

A turn reads its conversation's `chatMode` and `autoSettings` once, at some moment between its request being written
and its first frame. Requests run concurrently, so a `conversations:update` in flight then may or may not have been
applied: `SettingsLog.possible` answers with every value the settings could have had in such a window, and the
checker holds a turn only to what all of them promise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_MESSAGES = 12


@dataclass(frozen=True)
class Settings:
    mode: str  # "manual" | "round-robin" | "auto"
    max_messages: int
    style: str  # "sequential" | "rounds"

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> Settings:
        auto = row.get("autoSettings") or {}
        return cls(row.get("chatMode", "manual"), auto.get("maxMessages", DEFAULT_MAX_MESSAGES),
                   auto.get("style", "sequential"))

    def patched(self, params: dict[str, Any]) -> Settings:
        """These settings after an update with `params` (only the keys given change)."""
        auto = params.get("autoSettings") or {}
        return Settings(params.get("chatMode", self.mode), auto.get("maxMessages", self.max_messages),
                        auto.get("style", self.style))


DEFAULT = Settings("manual", DEFAULT_MAX_MESSAGES, "sequential")


@dataclass(eq=False)
class Sighting:
    """The settings held at some moment between `sent_at` and `answered_at` (None: never answered, so they may have
    been written at any later moment): an update's result, or a row read by create, get or list."""

    sent_at: int
    answered_at: int | None
    settings: Settings
    is_write: bool


class SettingsLog:
    """Every sighting of each conversation's settings in one session, by trace position."""

    def __init__(self) -> None:
        self._seen: dict[str, list[Sighting]] = {}

    def update_sent(self, conversation_id: str, sent_at: int, params: dict[str, Any]) -> Sighting:
        """An update written: until it answers, its settings are the latest known ones with its params applied."""
        seen = self._seen.setdefault(conversation_id, [])
        base = seen[-1].settings if seen else DEFAULT
        sighting = Sighting(sent_at, None, base.patched(params), is_write=True)
        seen.append(sighting)
        return sighting

    def update_answered(self, conversation_id: str, sighting: Sighting, at: int, row: dict[str, Any] | None) -> None:
        """Its answer: the row it wrote, or an error (then it changed nothing)."""
        if row is None:
            self._seen[conversation_id].remove(sighting)
        else:
            sighting.answered_at, sighting.settings = at, Settings.of_row(row)

    def row_read(self, sent_at: int, at: int, row: dict[str, Any]) -> None:
        self._seen.setdefault(row["id"], []).append(Sighting(sent_at, at, Settings.of_row(row), is_write=False))

    def possible(self, conversation_id: str, since: int, until: int) -> list[Settings] | None:
        """Every value the settings may have had at some moment between trace positions `since` and `until`; None
        when this conversation's settings were never seen (then anything is possible)."""
        seen = self._seen.get(conversation_id)
        if not seen:
            return None
        done = [(s, s.answered_at) for s in seen if s.answered_at is not None and s.answered_at < since]
        # What held at `since`: a sighting that no write certainly followed (one written after it had answered).
        current = [s for s, answered in done if not any(w.is_write and w.sent_at > answered for w, _ in done)]
        during = [s for s in seen if s.sent_at <= until and (s.answered_at is None or s.answered_at >= since)]
        return [s.settings for s in current + during] or None
