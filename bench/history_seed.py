"""A long conversation written straight into a data dir's database through the storage layer: one transaction,
one `executemany`, a few seconds for 100,000 rows (through the sidecar's methods it would be 100,000 requests).

Used by `bench/m_history.py` and `tests/stdio/test_long_history.py`. The database file must already exist and no
sidecar may be running on it: a sidecar makes the file, the conversation and its agents through its own methods,
stops, and is started again after the seeding. Only the `messages` columns of the first schema step are written
(the later ones have defaults), and nothing is migrated here, so a frozen binary built from an older tree still
opens the file as its own.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

from storage.db import DB_FILE_NAME, open_sqlite
from storage.ids import IdFactory, now_ms
from storage.models import Message

_VOCABULARY = (
    "the a of to and in that it is for on with as we this be at by not or from but what all were when can there "
    "an which their if do will each about how up out them then she many some so these would other into has more "
    "plan budget design test release user data model agent question answer idea reason example detail risk cost "
    "time team result review change point issue option approach context history message reply budget estimate"
).split()
_COLUMNS = (
    Message.id,
    Message.conversation_id,
    Message.conversation_agent_id,
    Message.role,
    Message.content,
    Message.included,
    Message.status,
    Message.reply_to_id,
    Message.created_at,
)
STEP_MS = 1000  # seeded rows are one second apart and end before now, so every later row sorts after them


def _text(rng: random.Random, words: tuple[int, int]) -> str:
    return " ".join(rng.choices(_VOCABULARY, k=rng.randint(*words)))


def _rows(
    conversation_id: str, member_ids: Sequence[str], count: int, seed: int, words: tuple[int, int]
) -> Iterator[tuple[object, ...]]:
    """Turn-shaped rows: a user message, then a reply from each member to it, over and over, oldest first."""
    rng = random.Random(seed)
    clock = itertools.count(now_ms() - (count + 60) * STEP_MS, STEP_MS)
    ids = IdFactory(clock_ms=lambda: next(clock))
    trigger = ""
    for index in range(count):
        message_id, created_at = ids.next()
        slot = index % (len(member_ids) + 1)
        if slot == 0:
            trigger = message_id
            yield message_id, conversation_id, None, "user", _text(rng, words), 1, "complete", None, created_at
        else:
            yield (message_id, conversation_id, member_ids[slot - 1], "agent", _text(rng, words), 1, "complete",
                   trigger, created_at)


def seed_history(
    data_dir: Path,
    conversation_id: str,
    member_ids: Sequence[str],
    count: int,
    *,
    seed: int = 7,
    words: tuple[int, int] = (30, 90),
) -> None:
    """Add `count` complete, included messages to an existing conversation whose conversation agents are
    `member_ids`. Their text is `words` random words each (30–90: ~60 words, ~80 estimated tokens on average, so
    ~100 messages fill the default 8,192-token window)."""
    path = data_dir / DB_FILE_NAME
    if not path.exists():
        raise FileNotFoundError(f"no database at {path}: start a sidecar on the data dir first")
    sqlite = open_sqlite(path)
    try:
        columns = ", ".join(column.column_name for column in _COLUMNS)
        placeholders = ", ".join("?" for _ in _COLUMNS)
        sql = f"INSERT INTO {Message._meta.table_name} ({columns}) VALUES ({placeholders})"
        with sqlite.atomic():
            sqlite.cursor().executemany(sql, _rows(conversation_id, member_ids, count, seed, words))
    finally:
        sqlite.close()
