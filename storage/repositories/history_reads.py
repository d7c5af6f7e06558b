"""The chat engine's bounded reads of a conversation (CONTRACT §5c: a turn's cost follows its budget, not the
history's length): the newest rows back from an anchor until the reader has enough, the count of the older visible
rows it did not read, and the small indexed queries that replace scans of the whole history.

"Visible" rows are the ones a model may see: included, complete, active, not system. Their partial index, their
per-conversation counts and sizes (kept by triggers) and the partial index of completed replies come from
migration step 7; the queries here repeat those indexes' WHERE terms literally, as SQLite needs to use them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from storage.models import Message
from storage.records import MessageRecord
from storage.repositories._common import load_json
from storage.repositories.messages import CONVERSATION_ORDER, NEWEST_FIRST, SLOT, count_versions, group_of

# What a model may see, as the partial index `messages_visible` (migration step 7) states it, literally: SQLite
# uses a partial index only for a query that repeats its terms.
VISIBLE_SQL = "included = 1 AND status = 'complete' AND role != 'system' AND active = 1"
HISTORY_PAGE = 64  # rows per page of a bounded read, newest first
OLDER_IDS = 100  # ids of unread older visible rows a bounded read lists (a trim report names at most 100)


@dataclass(frozen=True)
class HistoryWindow:
    """The newest part of a conversation's history (active versions, oldest first), read back from an anchor until
    the reader had enough; `older_visible` counts the visible rows older than it that were not read."""

    rows: list[MessageRecord]
    older_visible: int = 0
    older_visible_ids: list[str] = field(default_factory=list)  # the newest of them (at most OLDER_IDS), newest first
    from_newest: bool = False  # read back from the conversation's newest row: every active row after `rows[0]`


class _Statement:
    """A peewee query turned into SQL once: building it costs ~1 ms a call on a slow core, more than running it, and
    the reads before each auto-mode speaker and each turn run several. Values named with `named()` are put in at
    each run; the query's own constants stay as they were."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._compiled: tuple[str, list[Any]] | None = None

    def rows(self, **values: Any) -> Sequence[tuple[Any, ...]]:
        if self._compiled is None:
            self._compiled = self._build().sql()
        sql, params = self._compiled
        bound = [values[p[1:]] if isinstance(p, str) and p[:1] == _NAMED else p for p in params]
        return Message._meta.database.execute_sql(sql, bound).fetchall()


_NAMED = "\x00"  # no text a query of ours compares with starts with NUL


def named(name: str) -> str:
    return _NAMED + name


def read_back(
    conversation_id: str, up_to_id: str | None, enough: Callable[[MessageRecord], bool], page: int = HISTORY_PAGE
) -> HistoryWindow:
    """Active rows newest first, from `up_to_id` (included; None: the newest row) back, page by page, until
    `enough(row)` says so (that row is kept) or the conversation's start. An `up_to_id` that is not an active row
    of the conversation reads nothing."""
    values: dict[str, Any] = {"conversation": conversation_id, "page": page}
    anchored = up_to_id is not None
    if anchored:
        found = _active_anchor().rows(id=up_to_id, conversation=conversation_id)
        if not found:
            return HistoryWindow([])
        values["anchor_at"], values["anchor_slot"], values["anchor_version"] = found[0]
    newest_first: list[MessageRecord] = []
    paged = False  # past the first page: only rows older than the last one read
    while True:
        batch = [record_from_columns(row) for row in _history_page(anchored, paged).rows(**values)]
        for row in batch:
            newest_first.append(row)
            if enough(row):
                return _window(
                    newest_first,
                    _count_visible_before(conversation_id, row),
                    _visible_ids_before(conversation_id, row, OLDER_IDS),
                    from_newest=not anchored,
                )
        if len(batch) < page:
            return _window(newest_first, 0, from_newest=not anchored)
        oldest = batch[-1]
        values["older_at"], values["older_slot"] = oldest.created_at, group_of(oldest)
        paged = True


@cache
def _history_page(anchored: bool, paged: bool) -> _Statement:
    """One page of `read_back`: up to the anchor (included) or the newest row, older than the last page's end."""

    def build() -> Any:
        terms = []
        if anchored:
            terms.append(~_newer_than(named("anchor_at"), named("anchor_slot"), named("anchor_version")))
        if paged:
            terms.append(_strictly_older(named("older_at"), named("older_slot")))
        return _active_rows(*terms).order_by(*NEWEST_FIRST).limit(named("page")).tuples()

    return _Statement(build)


def _active_rows(*terms: Any) -> Any:
    """The history columns of the named conversation's active rows that meet every term."""
    where = (Message.conversation_id == named("conversation")) & Message.active
    for term in terms:
        where &= term
    return Message.select(*HISTORY_COLUMNS).where(where)


@cache
def _active_anchor() -> _Statement:
    return _Statement(
        lambda: (
            Message.select(Message.created_at, SLOT, Message.version)
            .where((Message.id == named("id")) & (Message.conversation_id == named("conversation")) & Message.active)
            .tuples()
        )
    )


HISTORY_COLUMNS = (
    Message.id,
    Message.conversation_id,
    Message.conversation_agent_id,
    Message.role,
    Message.content,
    Message.included,
    Message.status,
    Message.reply_to_id,
    Message.created_at,
    Message.usage,
    Message.stop_reason,
    Message.version,
    Message.version_of_id,
    Message.edited_at,
)


def record_from_columns(row: tuple[Any, ...], version_count: int = 1) -> MessageRecord:
    (id_, conv, ca, role, content, included, status, reply_to, created, usage, stop_reason,
     version, version_of, edited_at) = row  # fmt: skip
    return MessageRecord(
        id_, conv, ca, role, content, bool(included), status, reply_to, created, load_json(usage), stop_reason,
        version, version_count, version_of, edited_at,
    )  # fmt: skip


def _window(
    newest_first: list[MessageRecord], older_visible: int, older_ids: list[str] | None = None, from_newest: bool = False
) -> HistoryWindow:
    counts = count_versions(group_of(row) for row in newest_first if row.role == "agent" and row.version_of_id)
    rows = [
        replace(row, version_count=counts.get(group_of(row), 1)) if row.role == "agent" else row
        for row in reversed(newest_first)
    ]
    return HistoryWindow(rows, older_visible, older_ids or [], from_newest)


def _visible_ids_before(conversation_id: str, row: MessageRecord, limit: int) -> list[str]:
    """The ids of the newest `limit` visible rows older than `row`, newest first (from the partial index)."""
    cursor = Message._meta.database.execute_sql(
        f"SELECT id FROM messages WHERE conversation_id = ? AND {VISIBLE_SQL}"
        " AND (created_at < ? OR (created_at = ? AND COALESCE(version_of_id, id) < ?))"
        " ORDER BY created_at DESC, COALESCE(version_of_id, id) DESC LIMIT ?",
        (conversation_id, row.created_at, row.created_at, group_of(row), limit),
    )
    return [message_id for (message_id,) in cursor]


def _strictly_older(created_at: int, slot: str) -> Any:
    return (Message.created_at < created_at) | ((Message.created_at == created_at) & (SLOT < slot))


def _newer_than(created_at: int, slot: str, version: int) -> Any:
    """After this row in conversation order (CONVERSATION_ORDER)."""
    return (Message.created_at > created_at) | (
        (Message.created_at == created_at) & ((SLOT > slot) | ((SLOT == slot) & (Message.version > version)))
    )


def _count_visible_before(conversation_id: str, row: MessageRecord) -> int:
    """Visible rows older than `row`: the conversation's count (kept by triggers, migration step 7) less the ones
    from `row` on, counted from the covering partial index. The rows from `row` on are the ones a turn read and any
    after its trigger: for a turn on the newest message, about its budget's worth, whatever the history's length."""
    db = Message._meta.database
    counted = "SELECT SUM(visible) FROM visible_counts WHERE conversation_id = ?"
    total = db.execute_sql(counted, (conversation_id,)).fetchone()[0]
    newer = db.execute_sql(
        f"SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND created_at > ? AND {VISIBLE_SQL}",
        (conversation_id, row.created_at),
    ).fetchone()[0]
    same = db.execute_sql(
        f"SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND created_at = ? AND {VISIBLE_SQL}"
        " AND COALESCE(version_of_id, id) >= ?",
        (conversation_id, row.created_at, group_of(row)),
    ).fetchone()[0]
    return max(0, int(total or 0) - int(newer) - int(same))


def visible_sizes(conversation_id: str) -> dict[str | None, tuple[int, int, int]]:
    """Per author (conversation agent id; None for user rows) of the visible rows: (count, code points, UTF-8
    bytes) of their content, as the triggers of migration step 7 keep them: a few rows, whatever the history."""
    rows = Message._meta.database.execute_sql(
        "SELECT author, visible, chars, utf8_bytes FROM visible_counts WHERE conversation_id = ? AND visible > 0",
        (conversation_id,),
    )
    return {(author or None): (int(count), int(chars), int(size)) for author, count, chars, size in rows}


def last_completed_speaker(conversation_id: str) -> str | None:
    """The conversation agent that last completed a reply (an error does not move a rotation on); one step of the
    partial index `messages_completed_replies`, whose terms the query repeats literally."""
    row = Message._meta.database.execute_sql(
        "SELECT conversation_agent_id FROM messages"
        " WHERE conversation_id = ? AND role = 'agent' AND status = 'complete' AND conversation_agent_id IS NOT NULL"
        " ORDER BY created_at DESC, COALESCE(version_of_id, id) DESC LIMIT 1",
        (conversation_id,),
    ).fetchone()
    return None if row is None else row[0]


def latest_settled(conversation_id: str, window: HistoryWindow | None = None) -> MessageRecord | None:
    """The newest settled user or agent row (active): the message an auto-mode speaker answers. Found in `window`
    when it was read from the newest row and holds one (a query otherwise)."""
    if window is not None and window.from_newest:
        for row in reversed(window.rows):
            if _settled(row):
                return row
    found = _latest_settled().rows(conversation=conversation_id)
    return record_from_columns(found[0]) if found else None


def _settled(row: MessageRecord) -> bool:
    return row.status == "complete" and row.role != "system"


@cache
def _latest_settled() -> _Statement:
    return _Statement(
        lambda: (
            _active_rows(Message.status == "complete", Message.role != "system")
            .order_by(*NEWEST_FIRST)
            .limit(1)
            .tuples()
        )
    )


def active_replies_to(trigger_id: str) -> dict[str, str]:
    """Each agent's active, complete reply to the trigger: conversation agent id → message id."""
    query = (
        Message.select(Message.conversation_agent_id, Message.id)
        .where(
            (Message.reply_to_id == trigger_id)
            & (Message.role == "agent")
            & Message.active
            & (Message.status == "complete")
            & Message.conversation_agent_id.is_null(False)
        )
        .order_by(*CONVERSATION_ORDER)
        .tuples()
    )
    return {agent: message_id for agent, message_id in query}


def rows_since(conversation_id: str, first_id: str, window: HistoryWindow | None = None) -> list[MessageRecord]:
    """Active rows from `first_id` (included) to the newest, oldest first: an auto run's own messages (bounded
    by its message limit). Taken from `window` when it was read from the newest row and reaches back to `first_id`
    (a query otherwise)."""
    if window is not None and window.from_newest:
        for index, row in enumerate(window.rows):
            if row.id == first_id:
                return window.rows[index:]
    anchor = _anchor().rows(id=first_id, conversation=conversation_id)
    if not anchor:
        return []
    created_at, slot = anchor[0]
    return [
        record_from_columns(row)
        for row in _rows_from().rows(conversation=conversation_id, anchor_at=created_at, anchor_slot=slot)
    ]


@cache
def _anchor() -> _Statement:
    return _Statement(
        lambda: (
            Message.select(Message.created_at, SLOT)
            .where((Message.id == named("id")) & (Message.conversation_id == named("conversation")))
            .tuples()
        )
    )


@cache
def _rows_from() -> _Statement:
    return _Statement(
        lambda: (
            _active_rows(~_strictly_older(named("anchor_at"), named("anchor_slot")))
            .order_by(*CONVERSATION_ORDER)
            .tuples()
        )
    )
