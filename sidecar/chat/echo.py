"""Strip a reply's echo of its own `"<AgentName>:"` prefix, whole or while it streams.

The name matches case-insensitively (character by character, so no case mapping changes lengths),
after optional leading whitespace; the prefix and the whitespace after it are removed. Any other
reply passes through unchanged, leading whitespace included.
"""

from __future__ import annotations

from typing import Literal


def strip_echo_prefix(reply: str, agent_name: str) -> str:
    """`reply` without a leading `"<agent_name>:"` and the whitespace around it."""
    prefix = f"{agent_name}:"
    start = len(reply) - len(reply.lstrip())
    candidate = reply[start : start + len(prefix)]
    if agent_name and len(candidate) == len(prefix) and _same_letters(candidate, prefix):
        return reply[start + len(prefix) :].lstrip()
    return reply


class EchoPrefixStripper:
    """Streaming twin of `strip_echo_prefix`: holds text back only while it could still be the prefix."""

    def __init__(self, agent_name: str) -> None:
        self._prefix = f"{agent_name}:"
        self._held = ""
        self._state: Literal["deciding", "after_prefix", "passing"] = "deciding" if agent_name else "passing"

    def feed(self, delta: str) -> str:
        """The text that is now safe to emit."""
        if self._state == "passing":
            return delta
        if self._state == "after_prefix":
            return self._skip_whitespace(delta)
        self._held += delta
        return self._decide()

    def finish(self) -> str:
        """Whatever is still held back (a reply that ended while it still looked like a prefix)."""
        held = self._held if self._state == "deciding" else ""
        self._held = ""
        self._state = "passing"
        return held

    def _decide(self) -> str:
        text = self._held.lstrip()
        seen = text[: len(self._prefix)]
        if not _same_letters(seen, self._prefix[: len(seen)]):
            return self._pass_held()
        if len(seen) < len(self._prefix):
            return ""  # still could be the prefix
        self._held = ""
        self._state = "after_prefix"
        return self._skip_whitespace(text[len(self._prefix) :])

    def _pass_held(self) -> str:
        held, self._held = self._held, ""
        self._state = "passing"
        return held

    def _skip_whitespace(self, text: str) -> str:
        text = text.lstrip()
        if text:
            self._state = "passing"
        return text


def _same_letters(a: str, b: str) -> bool:
    return len(a) == len(b) and all(x.casefold() == y.casefold() for x, y in zip(a, b, strict=True))
