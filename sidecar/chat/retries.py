"""When to try an agent's call again, and after how long (CONTRACT §5, Failures)."""

from __future__ import annotations

from collections.abc import Callable

MAX_ATTEMPTS = 3  # the first call and two retries
MAX_RETRY_AFTER_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 8.0
FIRST_BACKOFF_SECONDS = 0.5
JITTER = 0.25


def retry_delay(retry_number: int, retry_after_s: float | None, random: Callable[[], float]) -> float | None:
    """Seconds to wait before retry `retry_number` (1 or 2), or None when it must not be retried.

    A provider's `Retry-After` wins (up to 30 s; a longer one fails at once); otherwise exponential
    backoff, 0.5 s then 1 s, ±25 % jitter, never above 8 s. `random()` returns a float in [0, 1).
    """
    if retry_number >= MAX_ATTEMPTS:
        return None
    if retry_after_s is not None:
        return max(retry_after_s, 0.0) if retry_after_s <= MAX_RETRY_AFTER_SECONDS else None
    base = FIRST_BACKOFF_SECONDS * 2 ** (retry_number - 1)
    jittered = base * (1 - JITTER + 2 * JITTER * random())
    return min(jittered, MAX_BACKOFF_SECONDS)
