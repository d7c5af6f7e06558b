"""UUIDv7 ids and millisecond timestamps, monotonic within the process.

An id and its row's `created_at` come from one call, so `ORDER BY created_at, id` is insertion order
even when many rows share a millisecond.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime


class IdFactory:
    """Makes `(uuid7_string, epoch_ms)` pairs that sort in the order they were made."""

    def __init__(self, clock_ms: Callable[[], int] | None = None) -> None:
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._lock = threading.Lock()
        self._last_ms = -1
        self._counter = 0

    def next(self) -> tuple[str, int]:
        with self._lock:
            ms = max(self._clock_ms(), self._last_ms)
            if ms == self._last_ms:
                self._counter += 1
                if self._counter > 0xFFF:  # 12-bit counter spent: borrow the next millisecond
                    ms += 1
                    self._counter = 0
            else:
                self._counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count up
            self._last_ms = ms
            return _uuid7(ms, self._counter), ms

    def new_id(self) -> str:
        return self.next()[0]


def _uuid7(ms: int, counter: int) -> str:
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_iso(epoch_ms: int) -> str:
    """`1764144000000` → `2025-11-26T08:00:00.000Z` (the wire format)."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"
