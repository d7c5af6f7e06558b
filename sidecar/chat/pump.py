"""One attempt's stream → the agent's reply: deadlines, coalescing, and the save-then-send flush step.

The provider's stream is read by a producer task into a memory stream; the consumer here waits on it with
deadlines, so a stall times out and buffered text is flushed on time without ever cancelling the SDK's iterator
half-way. A flush saves the pending text and then sends it as one `streaming` update, shielded as one step: the
text a client has seen is exactly what the row holds, whenever a cancel lands.
"""

from __future__ import annotations

import math
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from sidecar.chat.events import COALESCE_SECONDS
from sidecar.chat.runs import Run
from sidecar.chat.speakers import could_become_skip, is_skip
from sidecar.logs import logger
from sidecar.providers.base import Provider, ProviderError, StreamEnd
from storage.db import Database
from storage.ids import IdFactory
from storage.repositories import turns

StreamItem = str | StreamEnd | ProviderError


class ReplyNotSaved(Exception):
    """A reply's row could not be written (its conversation or agent is gone, or the database is closed)."""


async def stream_attempt(run: Run, provider: Provider, request: dict[str, Any], saves: ReplySaves) -> None:
    """Stream one attempt into `run.reply`; raises ProviderError (failed attempt) or ReplyNotSaved."""
    send, receive = anyio.create_memory_object_stream[StreamItem](math.inf)
    run.reply.request = request
    failure: BaseException | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(_produce, provider, request, send)
        try:
            await _consume(run, receive, saves)
        except (ProviderError, ReplyNotSaved) as error:
            # Raised out here: leaving the task group with it would wrap it in an ExceptionGroup.
            failure = error
        finally:
            tg.cancel_scope.cancel()
    if failure is not None:
        raise failure


async def _consume(run: Run, receive: MemoryObjectReceiveStream[StreamItem], saves: ReplySaves) -> None:
    reply = run.reply
    timeout = run.participant.timeout_ms / 1000
    last_activity = anyio.current_time()
    ended = False
    async with receive:
        while True:
            now = anyio.current_time()
            wait = last_activity + timeout - now
            if reply.pending and not _may_still_skip(run):
                wait = min(wait, reply.last_flush + COALESCE_SECONDS - now)
            item: StreamItem | None = None
            with anyio.move_on_after(max(wait, 0)):
                try:
                    item = await receive.receive()
                except anyio.EndOfStream:
                    break
            now = anyio.current_time()
            if item is None:
                if now - last_activity >= timeout:
                    raise ProviderError("timeout")
            elif isinstance(item, ProviderError):
                raise item
            elif isinstance(item, StreamEnd):
                reply.usage, reply.stop_reason, ended = item.usage, item.stop_reason, True
            else:
                last_activity = now
                _take_text(run, item, now)
            if reply.pending and now - reply.last_flush >= COALESCE_SECONDS and not _may_still_skip(run):
                await flush(run, saves)
    if not ended:  # a provider that stops without its final event: the stream was cut
        raise ProviderError("network")
    reply.pending += reply.stripper.finish()
    if run.may_skip and not reply.text and is_skip(reply.pending):
        reply.skipped, reply.pending = True, ""  # not a reply: the agent passes its turn
        return
    await flush(run, saves)


def _may_still_skip(run: Run) -> bool:
    """In auto mode nothing is shown while the reply could still be exactly `SKIP`."""
    return run.may_skip and not run.reply.text and could_become_skip(run.reply.pending)


def _take_text(run: Run, delta: str, now: float) -> None:
    reply = run.reply
    if not reply.provider_text_seen:
        reply.provider_text_seen = True
        reply.first_token_at = now
    reply.pending += reply.stripper.feed(delta)


async def flush(run: Run, saves: ReplySaves, shield: bool = True) -> None:
    """Save the pending text, then send it; one step that a cancel cannot split (bounded by the writer).

    `shield=False` when the caller is already shielded and bounded (settling at shutdown): its deadline wins.
    """
    reply = run.reply
    if not reply.pending:
        return
    with anyio.CancelScope(shield=shield):
        text = reply.text + reply.pending
        try:
            await saves.save(run, text)
        except ReplyNotSaved:
            reply.pending = ""  # text that could not be saved is not shown either
            raise
        delta, reply.pending, reply.text = reply.pending, "", text
        reply.last_flush = anyio.current_time()
        await run.updates.send("streaming", delta=delta, messageId=reply.message_id)


class ReplySaves:
    """Creates reply rows and saves their partial text, batching every agent's saves into shared transactions.

    Under 100 streams each agent saving on its own meant ~2,000 thread hops and commits a second; the saves
    that arrive while one batch is being written go together in the next. `save` returns once the text is
    committed: whatever a client is sent next must survive a crash.
    """

    def __init__(self, db: Database, ids: IdFactory) -> None:
        self._db = db
        self._ids = ids
        self._open = _Batch()
        self._lock = anyio.Lock()  # one batch written at a time: the next one fills meanwhile

    async def save(self, run: Run, text: str) -> None:
        try:
            if run.reply.message_id is None:
                p = run.participant
                row = await self._db.run(
                    turns.create_reply,
                    self._ids,
                    p.conversation_id,
                    p.conversation_agent_id,
                    run.trigger_id,
                    text,
                    run.version_of,
                )
                run.reply.message_id = row.id
            else:
                await self.save_partial(run.reply.message_id, text)
        except Exception as exc:  # the row's conversation or agent went away, or the database closed
            logger.bind(exc_type=type(exc).__name__, conversationId=run.conversation_id).warning(
                "a reply could not be saved"
            )
            raise ReplyNotSaved from exc

    async def save_partial(self, message_id: str, text: str) -> None:
        batch = self._open
        batch.texts[message_id] = text  # an agent has one save in flight: this never replaces another's text
        while not batch.written:
            if batch.writer is not None:
                await batch.writer.wait()
                continue  # written, or its writer failed and someone (maybe this caller) takes over
            batch.writer = done = anyio.Event()
            try:
                async with self._lock:
                    if batch is self._open:
                        self._open = _Batch()  # later saves go to the next batch
                    await self._db.run(turns.save_partial_replies, batch.texts)
                    batch.written = True
            finally:
                batch.writer = None
                done.set()


@dataclass
class _Batch:
    texts: dict[str, str] = field(default_factory=dict)
    written: bool = False
    writer: anyio.Event | None = None  # set when its writer is done, whether it wrote the batch or not


async def _produce(provider: Provider, request: dict[str, Any], send: MemoryObjectSendStream[StreamItem]) -> None:
    async with send:
        try:
            async with aclosing(provider.stream(request)) as chunks:  # closes the HTTP response on every exit
                async for item in chunks:
                    await send.send(item)
        except ProviderError as error:
            await send.send(error)
        except Exception as exc:  # a provider bug must not take the turn down: it becomes `unknown`
            logger.bind(exc_type=type(exc).__name__).error("provider raised an unexpected exception")
            await send.send(ProviderError("unknown"))
