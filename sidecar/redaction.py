"""The registry of secrets this process has seen, and `redact`, which cleans every log line of them.

Error texts and system messages are fixed sentences that never quote a provider, so no key can reach them. A
model's reply is never passed through here (CONTRACT §4): altering its text silently would be worse than the
leak it guards against, since a key in a reply can only have come from the provider it was sent to.
"""

from __future__ import annotations

import json
import re
import threading

REDACTED = "[REDACTED]"
# Shorter keys are placeholders (`ollama`, `none`, `here`) that also occur in ordinary text: searching for them
# would cut words out of every log line and error text while protecting nothing.
MIN_SECRET_LENGTH = 12

_secrets: set[str] = set()
_lock = threading.Lock()

# Shapes of keys and auth headers, caught in logs even when a secret was never registered.
_KEY_PATTERNS = re.compile(
    r"(sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{8,})"
    r"|((?i:bearer)\s+[A-Za-z0-9._\-~+/=]{8,})"
    r"|((?i:x-api-key)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9._\-]{8,})"
)


def register_secret(value: str | None) -> None:
    """Remember a secret so no later log line or error text can carry it (placeholders are not remembered)."""
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
