"""Partial reply saves from many agents share transactions, and each returns only once its text is committed."""

from __future__ import annotations

import sqlite3
from typing import Any

import anyio
import pytest

from sidecar.chat.pump import ReplySaves
from storage.db import Database
from storage.ids import IdFactory
from storage.repositories import conversations, turns

pytestmark = pytest.mark.anyio


def _replies(ids: IdFactory, n: int) -> list[str]:
    conversation = conversations.create_conversation(ids, {"title": "Saves"})
    trigger = turns.add_user_message(ids, conversation["id"], "Go")
    return [turns.add_system_message(ids, conversation["id"], f"row {i}", trigger.id, None).id for i in range(n)]


async def test_concurrent_saves_share_transactions_and_each_is_committed_when_it_returns(
    database: Database, ids: IdFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    message_ids = _replies(ids, 10)
    database.run_sync(_mark_streaming, message_ids)
    batches: list[dict[str, str]] = []
    real = turns.save_partial_replies

    def spy(texts: dict[str, str]) -> None:
        batches.append(dict(texts))
        real(texts)

    monkeypatch.setattr(turns, "save_partial_replies", spy)
    saves = ReplySaves(database, ids)
    committed: dict[str, str] = {}
    # A second connection sees only committed data.
    with sqlite3.connect(database.sqlite.database) as reader:

        async def save(message_id: str, text: str) -> None:
            await saves.save_partial(message_id, text)
            row = reader.execute("SELECT content FROM messages WHERE id = ?", (message_id,)).fetchone()
            committed[message_id] = row[0]

        async with anyio.create_task_group() as tg:
            for message_id in message_ids:
                tg.start_soon(save, message_id, f"text of {message_id}")
    assert committed == {m: f"text of {m}" for m in message_ids}
    assert sum(len(batch) for batch in batches) == 10 and len(batches) < 10


async def test_a_partial_save_never_replaces_a_finished_reply(database: Database, ids: IdFactory) -> None:
    [message_id] = _replies(ids, 1)
    database.run_sync(_mark_streaming, [message_id])
    await ReplySaves(database, ids).save_partial(message_id, "Hel")
    database.run_sync(turns.finish_reply, message_id, "complete", "Hello there", None)
    await ReplySaves(database, ids).save_partial(message_id, "Hello")  # queued behind the finish, say
    assert database.run_sync(_content, message_id) == "Hello there"


def _mark_streaming(message_ids: list[str]) -> None:
    from storage.models import Message

    Message.update(status="streaming").where(Message.id.in_(message_ids)).execute()


def _content(message_id: str) -> Any:
    record = turns.get_message(message_id)
    assert record is not None
    return record.content


async def test_a_cancelled_writer_hands_its_batch_to_a_waiting_caller(database: Database, ids: IdFactory) -> None:
    first, second = _replies(ids, 2)
    database.run_sync(_mark_streaming, [first, second])
    saves = ReplySaves(database, ids)
    async with anyio.create_task_group() as tg:
        await saves._lock.acquire()  # a batch is being written: the next one waits, filling
        writer_scope = anyio.CancelScope()
        tg.start_soon(_save_in, writer_scope, saves, first, "from the writer")
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(saves.save_partial, second, "from the waiter")
        await anyio.wait_all_tasks_blocked()
        writer_scope.cancel()  # the writer goes away before its batch is written
        await anyio.wait_all_tasks_blocked()
        saves._lock.release()
    assert database.run_sync(_content, first) == "from the writer"  # its text still went in the batch
    assert database.run_sync(_content, second) == "from the waiter"


async def _save_in(scope: anyio.CancelScope, saves: ReplySaves, message_id: str, text: str) -> None:
    with scope:
        await saves.save_partial(message_id, text)
