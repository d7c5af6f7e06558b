"""One agent run from `thinking` to its settled end: a call slot, attempts and retries, then `settle`.

Whatever happens inside — a provider failure, a row that can no longer be saved, `chat:cancel`, a cancelled
request — ends in exactly one `settle`, and nothing escapes to the run's siblings.
"""

from __future__ import annotations

import random
from typing import Any

import anyio
import anyio.lowlevel
from loguru import logger

from sidecar.chat.provider_pool import ProviderPool
from sidecar.chat.pump import ReplyNotSaved, ReplySaves, stream_attempt
from sidecar.chat.retries import MAX_ATTEMPTS, retry_delay
from sidecar.chat.runs import Run
from sidecar.chat.settle import NOT_SAVED_MESSAGE, Cancelled, Completed, Failed, Outcome, Settler, Skipped
from sidecar.providers.base import ProviderError


class AgentCaller:
    def __init__(self, pool: ProviderPool, saves: ReplySaves, settler: Settler) -> None:
        self._pool = pool
        self._saves = saves
        self._settler = settler
        self._random = random.Random()

    async def call(self, run: Run, request: dict[str, Any] | ProviderError) -> dict[str, Any]:
        """Run to its end and return its `AgentResult`; `request` is the body, or why none could be built."""
        try:
            with anyio.CancelScope(shield=True):  # `thinking` always goes first, even for a run born cancelled
                await run.updates.send("thinking")
            outcome: Outcome = Cancelled()
            with run.scope:
                await anyio.lowlevel.checkpoint()  # a run claimed already cancelled ends here, cancelled
                outcome = Failed(request) if isinstance(request, ProviderError) else await self._attempts(run, request)
        except anyio.get_cancelled_exc_class():
            await self._settler.settle(run, Cancelled())  # the request itself was cancelled
            raise
        except Exception as exc:  # a bug of ours costs this agent its reply, never its siblings theirs
            logger.opt(exception=exc).bind(conversationId=run.conversation_id).error("agent run failed")
            outcome = Failed(ProviderError("unknown"))
        return await self._settler.settle(run, outcome)

    async def _attempts(self, run: Run, request: dict[str, Any]) -> Outcome:
        attempt = 1
        while True:
            try:
                await self._attempt(run, request, first=attempt == 1)
                if run.reply.skipped:
                    return Skipped()
                if not run.reply.text:
                    raise _empty_reply()
                return Completed()
            except ReplyNotSaved:
                return Failed(ProviderError("unknown", retryable=False, safe_message=NOT_SAVED_MESSAGE))
            except ProviderError as error:
                delay = None if run.reply.provider_text_seen or not error.retryable else self._delay(attempt, error)
                if delay is None:
                    return Failed(error)
                attempt += 1
                await run.updates.send("retrying", attempt=attempt, retryAfterMs=round(delay * 1000))
                await anyio.sleep(delay)

    async def _attempt(self, run: Run, request: dict[str, Any], first: bool) -> None:
        provider = await self._pool.provider_for(run.participant)
        slots = self._pool.slots(run.participant.llm_config)
        if first and slots.available_tokens < 1:
            await run.updates.send("queued")  # at most once, right after `thinking`
        async with slots:
            await stream_attempt(run, provider, request, self._saves)

    def _delay(self, attempt: int, error: ProviderError) -> float | None:
        if attempt >= MAX_ATTEMPTS:
            return None
        return retry_delay(attempt, error.retry_after_s, self._random.random)


def _empty_reply() -> ProviderError:
    return ProviderError("provider", safe_message="The provider returned an empty reply. Try again in a moment.")
