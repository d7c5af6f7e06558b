"""A turn's bounded reads (CONTRACT §5c): the history read back from an anchor until the reader has enough, the count
of the older visible rows it did not read (kept by triggers), and the small queries that replace whole-history scans.

Every test checks the bounded answer against the whole history (`turns.load_history`), after changes of every kind
that move a row in or out of view: inclusion, deletion, a new version, a failed reply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from storage.db import Database
from storage.ids import IdFactory
from storage.records import MessageRecord
from storage.repositories import conversation_agents, conversations, history_reads, messages, turns

MakeAgent = Callable[..., dict[str, Any]]


@pytest.fixture
def chat(database: Database, ids: IdFactory, make_agent: MakeAgent) -> dict[str, Any]:
    conversation = conversations.create_conversation(ids, {"title": "Long"})
    ada = conversation_agents.add_conversation_agent(
        ids, {"conversationId": conversation["id"], "agentId": make_agent("Ada")["id"]}
    )
    bob = conversation_agents.add_conversation_agent(
        ids, {"conversationId": conversation["id"], "agentId": make_agent("Bob")["id"]}
    )
    return {"id": conversation["id"], "ada": ada["id"], "bob": bob["id"]}


def _visible(row: MessageRecord) -> bool:
    return row.included and row.status == "complete" and row.role != "system"


def _after(n: int) -> Callable[[MessageRecord], bool]:
    """Enough once n visible rows are read."""
    seen = 0

    def enough(row: MessageRecord) -> bool:
        nonlocal seen
        seen += _visible(row)
        return seen >= n

    return enough


def _fill(ids: IdFactory, chat: dict[str, Any], turns_count: int) -> list[MessageRecord]:
    rows = []
    for n in range(turns_count):
        question = turns.add_user_message(ids, chat["id"], f"question {n}")
        reply = turns.create_reply(ids, chat["id"], chat["ada"], question.id, "…")
        turns.finish_reply(reply.id, "complete", f"answer {n}", None)
        rows += [question, reply]
    return rows


def _check(chat: dict[str, Any], up_to: str | None, wanted: int, page: int = 4) -> history_reads.HistoryWindow:
    whole = turns.load_history(chat["id"])
    window = history_reads.read_back(chat["id"], up_to, _after(wanted), page=page)
    end = len(whole) if up_to is None else next(i for i, row in enumerate(whole) if row.id == up_to) + 1
    expected = whole[end - len(window.rows) : end]
    assert [row.id for row in window.rows] == [row.id for row in expected]
    older = [row for row in whole[: end - len(window.rows)] if _visible(row)]
    assert window.older_visible == len(older)
    assert window.older_visible_ids == [row.id for row in reversed(older)][: history_reads.OLDER_IDS]
    return window


def test_a_bounded_read_stops_once_it_has_enough_and_counts_the_rest(chat: dict[str, Any], ids: IdFactory) -> None:
    rows = _fill(ids, chat, 15)
    window = _check(chat, None, 5)
    assert sum(_visible(row) for row in window.rows) == 5 and window.older_visible == 25
    _check(chat, rows[9].id, 3)  # from an older anchor: the rows after it are neither read nor counted
    _check(chat, None, 100)  # more than there is: the whole history, nothing older
    assert history_reads.read_back(chat["id"], "no-such-message", _after(1)).rows == []


def _check_sizes(chat: dict[str, Any]) -> None:
    """The sizes the triggers keep are those of the visible rows of the whole history."""
    expected: dict[str | None, tuple[int, int, int]] = {}
    for row in turns.load_history(chat["id"]):
        if _visible(row):
            count, chars, size = expected.get(row.conversation_agent_id, (0, 0, 0))
            text = row.content
            expected[row.conversation_agent_id] = (count + 1, chars + len(text), size + len(text.encode()))
    assert history_reads.visible_sizes(chat["id"]) == expected


def test_the_count_follows_every_change_that_moves_a_row_in_or_out_of_view(
    chat: dict[str, Any], ids: IdFactory
) -> None:
    rows = _fill(ids, chat, 12)
    _check_sizes(chat)
    messages.update_inclusion(rows[0].id, False)
    messages.delete_message(rows[2].id)
    turns.add_system_message(ids, chat["id"], "Agent Bob: failed", rows[4].id, chat["bob"])
    failed = turns.create_reply(ids, chat["id"], chat["bob"], rows[4].id, "half")
    turns.finish_reply(failed.id, "error", "half", None)
    version = turns.create_reply(ids, chat["id"], chat["ada"], rows[6].id, "again", version_of=rows[7].id)
    turns.finish_reply(version.id, "complete", "again, better", None)
    turns.activate_version(version.id)  # the first version leaves the view, the new one takes its place
    _check(chat, None, 4)
    _check_sizes(chat)
    messages.update_inclusion(rows[0].id, True)
    messages.update_content(ids, rows[8].id, "naïve 日本語 edit 🙂")
    _check(chat, None, 4)
    _check(chat, None, 1, page=1)
    _check_sizes(chat)
    conversation_agents.remove_conversation_agent(chat["ada"])  # its replies go with it
    _check(chat, None, 2)
    _check_sizes(chat)
    conversations.delete_conversation(chat["id"])
    assert history_reads.visible_sizes(chat["id"]) == {}


def test_who_spoke_last_and_a_triggers_replies_come_from_their_own_queries(
    chat: dict[str, Any], ids: IdFactory
) -> None:
    assert history_reads.last_completed_speaker(chat["id"]) is None and history_reads.latest_settled(chat["id"]) is None
    rows = _fill(ids, chat, 3)
    failed = turns.create_reply(ids, chat["id"], chat["bob"], rows[4].id, "oops")
    turns.finish_reply(failed.id, "error", "oops", None)  # an error does not move the rotation on
    assert history_reads.last_completed_speaker(chat["id"]) == chat["ada"]
    latest = history_reads.latest_settled(chat["id"])
    assert latest is not None and latest.id == rows[-1].id
    assert history_reads.active_replies_to(rows[4].id) == {chat["ada"]: rows[5].id}
    since = history_reads.rows_since(chat["id"], rows[2].id)
    assert [row.id for row in since] == [r.id for r in rows[2:]] + [failed.id]


def test_an_auto_runs_reads_taken_from_a_window_equal_their_own_queries(chat: dict[str, Any], ids: IdFactory) -> None:
    """`latest_settled` and `rows_since` search a window read from the newest row first: whatever it holds or
    misses, the answer is the one their own queries give."""
    rows = _fill(ids, chat, 6)
    turns.add_system_message(ids, chat["id"], "Agent Bob: failed", rows[-2].id, chat["bob"])  # newest: not settled
    failed = turns.create_reply(ids, chat["id"], chat["bob"], rows[-2].id, "half")
    turns.finish_reply(failed.id, "error", "half", None)
    messages.update_inclusion(rows[-1].id, False)  # settled though left out of the models' view
    expected_latest = history_reads.latest_settled(chat["id"])
    assert expected_latest is not None and expected_latest.id == rows[-1].id
    for wanted in (0, 1, 3, 100):  # windows that end before, at, and far beyond the rows asked for
        window = history_reads.read_back(chat["id"], None, _after(wanted), page=2)
        assert window.from_newest
        latest = history_reads.latest_settled(chat["id"], window)
        assert latest is not None and latest.id == expected_latest.id
        for first in (rows[0], rows[5], rows[-1], failed):
            since = history_reads.rows_since(chat["id"], first.id, window)
            assert [r.id for r in since] == [r.id for r in history_reads.rows_since(chat["id"], first.id)]
        assert history_reads.rows_since(chat["id"], "no-such-message", window) == []
    anchored = history_reads.read_back(chat["id"], rows[3].id, _after(100))  # not from the newest row: not used
    assert not anchored.from_newest
    latest = history_reads.latest_settled(chat["id"], anchored)
    assert latest is not None and latest.id == expected_latest.id
    assert [r.id for r in history_reads.rows_since(chat["id"], rows[2].id, anchored)] == [
        r.id for r in history_reads.rows_since(chat["id"], rows[2].id)
    ]
