"""The registry of secrets this process has seen, and the two ways text is cleaned of them:
whole (`redact`, for log lines) and while it streams (`StreamRedactor`, for provider replies).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 4

_secrets: set[str] = set()
_lock = threading.Lock()

# Shapes of keys and auth headers, caught in logs even when a secret was never registered.
_KEY_PATTERNS = re.compile(
    r"(sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{8,})"
    r"|((?i:bearer)\s+[A-Za-z0-9._\-~+/=]{8,})"
    r"|((?i:x-api-key)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9._\-]{8,})"
)


def register_secret(value: str | None) -> None:
    """Remember a secret so no later log line or saved reply can carry it."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def registered_secrets() -> list[str]:
    """Longest first, so a secret containing another is replaced whole."""
    with _lock:
        return sorted(_secrets, key=len, reverse=True)


def redact(text: str) -> str:
    """A log line without registered secrets (raw or JSON-escaped) or key-shaped strings."""
    for secret in registered_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
        escaped = json.dumps(secret)[1:-1]
        if escaped != secret and escaped in text:
            text = text.replace(escaped, REDACTED)
    return _KEY_PATTERNS.sub(REDACTED, text)


class StreamRedactor:
    """Replaces registered secrets in streamed text, holding back only a tail that could begin one.

    Only exact registered secrets: a reply that merely talks about `sk-…` keys is left alone.
    """

    def __init__(self, secrets: Callable[[], list[str]] = registered_secrets) -> None:
        self._secrets = secrets
        self._held = ""

    def feed(self, delta: str) -> str:
        text = self._held + delta
        secrets = self._secrets()
        for secret in secrets:
            text = text.replace(secret, REDACTED)
        keep = max((_overlap(text, secret) for secret in secrets), default=0)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def finish(self) -> str:
        held, self._held = self._held, ""
        return held


def _overlap(text: str, secret: str) -> int:
    """Length of the longest end of `text` that is a proper beginning of `secret`."""
    for length in range(min(len(text), len(secret) - 1), 0, -1):
        if secret.startswith(text[-length:]):
            return length
    return 0
