"""One agent answering one turn: attempts and retries, the streamed reply, and exactly one terminal update.

The provider's stream is read by a producer task into a memory stream; the consumer here waits on it
with deadlines, so a stall times out and buffered text is flushed on time without ever cancelling
the SDK's iterator half-way.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from loguru import logger

from sidecar.chat.echo import EchoPrefixStripper
from sidecar.chat.events import COALESCE_SECONDS, AgentUpdates
from sidecar.chat.retries import MAX_ATTEMPTS, retry_delay
from sidecar.providers.base import Provider, ProviderError, Usage
from sidecar.redaction import StreamRedactor
from storage.db import Database
from storage.ids import IdFactory
from storage.records import ParticipantRecord
from storage.repositories import turns

StreamItem = str | Usage | ProviderError
OpenProvider = Callable[[ParticipantRecord], Awaitable[Provider]]


@dataclass
class AgentRun:
    """What one agent has done so far in this turn."""

    participant: ParticipantRecord
    trigger_id: str
    request: dict[str, Any]
    updates: AgentUpdates
    started: float = field(default_factory=anyio.current_time)
    stripper: EchoPrefixStripper = field(init=False)
    redactor: StreamRedactor = field(default_factory=StreamRedactor)
    message_id: str | None = None
    text: str = ""  # saved (and sent) so far
    pending: str = ""  # ready to send, waiting for the coalescing window
    provider_text_seen: bool = False  # the provider has sent text: no more retries
    first_token_at: float | None = None
    last_flush: float = -math.inf
    usage: Usage | None = None
    outcome: dict[str, Any] | None = None  # the AgentResult, once settled

    def __post_init__(self) -> None:
        self.stripper = EchoPrefixStripper(self.participant.agent_name)

    def accept_text(self, delta: str) -> None:
        """Provider text → without any API key (an untrusted provider may echo one) → without a name echo."""
        self.pending += self.stripper.feed(self.redactor.feed(delta))

    def release_held_text(self) -> None:
        """The reply is over: whatever the filters held back is text too."""
        self.pending += self.stripper.feed(self.redactor.finish()) + self.stripper.finish()

    def elapsed_ms(self, moment: float | None = None) -> int:
        return round(((moment if moment is not None else anyio.current_time()) - self.started) * 1000)


class AgentCaller:
    """Runs agents against providers and settles them in the database and on the wire."""

    def __init__(self, db: Database, ids: IdFactory, open_provider: OpenProvider, limiter_for: Callable[..., Any]):
        self._db = db
        self._ids = ids
        self._open_provider = open_provider
        self._limiter_for = limiter_for
        self._random = random.Random()
        self._partial_saves = PartialReplySaves(db)

    async def call(self, run: AgentRun, scope: anyio.CancelScope) -> dict[str, Any]:
        """Run to a terminal state. `scope` is this agent's own cancel scope (chat:cancel, shutdown)."""
        await run.updates.send("thinking")
        try:
            with scope:
                return await self._call_with_retries(run)
            if run.outcome is not None:
                return run.outcome  # cancelled after it had settled: the settled outcome stands
            return await self._settle_cancelled(run)  # reached only when `scope` was cancelled
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):  # the request itself was cancelled: still settle
                await self._settle_cancelled(run)
            raise

    async def _call_with_retries(self, run: AgentRun) -> dict[str, Any]:
        attempt = 1
        while True:
            try:
                await self._stream_once(run)
                if not run.text:
                    raise _empty_reply()
                return await self._settle_complete(run)
            except ProviderError as error:
                delay = None if run.provider_text_seen or not error.retryable else self._delay(attempt, error)
                if delay is None:
                    return await self._settle_error(run, error)
                attempt += 1
                await run.updates.send("retrying", attempt=attempt, retryAfterMs=round(delay * 1000))
                await anyio.sleep(delay)

    def _delay(self, attempt: int, error: ProviderError) -> float | None:
        if attempt >= MAX_ATTEMPTS:
            return None
        return retry_delay(attempt, error.retry_after_s, self._random.random)

    async def _stream_once(self, run: AgentRun) -> None:
        provider = await self._open_provider(run.participant)
        config_id = run.participant.llm_config.id if run.participant.llm_config else ""
        async with self._limiter_for(config_id):
            send, receive = anyio.create_memory_object_stream[StreamItem](math.inf)
            failure: ProviderError | None = None
            async with anyio.create_task_group() as tg:
                tg.start_soon(_produce, provider, run.request, send)
                try:
                    await self._consume(run, receive)
                except ProviderError as error:
                    # Raised out here: leaving the task group with it would wrap it in an ExceptionGroup,
                    # which the retry loop's `except ProviderError` never catches.
                    failure = error
                finally:
                    tg.cancel_scope.cancel()
            if failure is not None:
                raise failure

    async def _consume(self, run: AgentRun, receive: MemoryObjectReceiveStream[StreamItem]) -> None:
        timeout = run.participant.timeout_ms / 1000
        last_activity = anyio.current_time()
        async with receive:
            while True:
                now = anyio.current_time()
                wait = last_activity + timeout - now
                if run.pending:
                    wait = min(wait, run.last_flush + COALESCE_SECONDS - now)
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
                elif isinstance(item, Usage):
                    run.usage = item
                else:
                    last_activity = now
                    self._take_text(run, item, now)
                if run.pending and now - run.last_flush >= COALESCE_SECONDS:
                    await self._flush(run)
        run.release_held_text()
        await self._flush(run)

    def _take_text(self, run: AgentRun, delta: str, now: float) -> None:
        if not run.provider_text_seen:
            run.provider_text_seen = True
            run.first_token_at = now
        run.accept_text(delta)

    async def _flush(self, run: AgentRun) -> None:
        """Save the pending text, then send it: the row exists before any update names it, and whatever a
        client was shown survives a crash (at most 20 writes a second per agent, by the coalescing)."""
        if not run.pending:
            return
        delta, run.pending = run.pending, ""
        run.text += delta
        run.last_flush = anyio.current_time()
        p = run.participant
        if run.message_id is None:
            row = await self._db.run(
                turns.create_reply, self._ids, p.conversation_id, p.conversation_agent_id, run.trigger_id, run.text
            )
            run.message_id = row.id
        else:
            await self._partial_saves.save(run.message_id, run.text)
        await run.updates.send("streaming", delta=delta, messageId=run.message_id)

    async def _settle_complete(self, run: AgentRun) -> dict[str, Any]:
        with anyio.CancelScope(shield=True):  # once settling starts, it finishes
            run.outcome = await self._settle_complete_unshielded(run)
        return run.outcome

    async def _settle_error(self, run: AgentRun, error: ProviderError) -> dict[str, Any]:
        with anyio.CancelScope(shield=True):
            run.outcome = await self._settle_error_unshielded(run, error)
        return run.outcome

    async def _settle_cancelled(self, run: AgentRun) -> dict[str, Any]:
        with anyio.CancelScope(shield=True):
            run.outcome = await self._settle_cancelled_unshielded(run)
        return run.outcome

    async def _settle_complete_unshielded(self, run: AgentRun) -> dict[str, Any]:
        assert run.message_id is not None
        usage = _usage_wire(run)
        await self._db.run(turns.finish_reply, run.message_id, "complete", run.text, usage)
        await run.updates.send("complete", messageId=run.message_id, usage=usage)
        return _result(run, "complete", messageId=run.message_id, usage=usage)

    async def _settle_error_unshielded(self, run: AgentRun, error: ProviderError) -> dict[str, Any]:
        p = run.participant
        run.release_held_text()
        await self._flush(run)
        if run.message_id is not None:
            await self._db.run(turns.finish_reply, run.message_id, "error", run.text, _usage_wire(run))
        notice = await self._db.run(
            turns.add_system_message,
            self._ids,
            p.conversation_id,
            f"Agent {p.agent_name}: {error.safe_message}",
            run.trigger_id,
            p.conversation_agent_id,
        )
        logger.bind(
            provider=p.llm_config.provider if p.llm_config else None,
            statusCode=error.status_code,
            safeMessage=error.safe_message,
            errorType=error.error_type,
            conversationId=p.conversation_id,
            agentId=p.agent_id,
        ).warning("agent call failed")
        fields = {"error": error.safe_message, "errorType": error.error_type, "retryable": error.retryable}
        await run.updates.send("error", messageId=notice.id, **fields)
        return _result(run, "error", messageId=notice.id, **fields)

    async def _settle_cancelled_unshielded(self, run: AgentRun) -> dict[str, Any]:
        run.release_held_text()
        await self._flush(run)
        if run.message_id is not None:
            await self._db.run(turns.finish_reply, run.message_id, "cancelled", run.text, _usage_wire(run))
        await run.updates.send("cancelled", messageId=run.message_id)
        return _result(run, "cancelled", messageId=run.message_id)


class PartialReplySaves:
    """Saves of streaming replies' partial text, from every agent at once, batched into shared transactions.

    Under 100 streams each agent saving on its own meant ~2,000 thread hops and commits a second; now the saves
    that arrive while one batch is being written go together in the next. `save` returns once the text is
    committed (whatever a client is sent next must survive a crash); the first caller of a batch writes it and
    the others wait for it, all woken at once.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._open = _Batch()
        self._lock = anyio.Lock()  # one batch written at a time: the next one fills meanwhile

    async def save(self, message_id: str, text: str) -> None:
        batch = self._open
        batch.texts[message_id] = text  # an agent has one save in flight: this never replaces another's text
        while not batch.written:
            if batch.writer is not None:
                await batch.writer.wait()
                continue  # written, or its writer was cancelled and someone (maybe this caller) takes over
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


def _empty_reply() -> ProviderError:
    return ProviderError("provider", safe_message="The provider returned an empty reply. Try again in a moment.")


def _usage_wire(run: AgentRun) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    if run.usage is not None:
        if run.usage.input_tokens is not None:
            usage["inputTokens"] = run.usage.input_tokens
        if run.usage.output_tokens is not None:
            usage["outputTokens"] = run.usage.output_tokens
    if run.first_token_at is not None:
        usage["firstTokenMs"] = run.elapsed_ms(run.first_token_at)
    usage["totalMs"] = run.elapsed_ms()
    return usage


def _result(run: AgentRun, status: str, **fields: Any) -> dict[str, Any]:
    p = run.participant
    result: dict[str, Any] = {
        "conversationAgentId": p.conversation_agent_id,
        "agentId": p.agent_id,
        "agentName": p.agent_name,
        "status": status,
        "durationMs": run.elapsed_ms(),
    }
    if run.first_token_at is not None:
        result["firstTokenMs"] = run.elapsed_ms(run.first_token_at)
    result.update({key: value for key, value in fields.items() if value is not None})
    return result
