"""One agent run from `thinking` to its settled end: a call slot, attempts and retries, then `settle`.

Whatever happens inside — a provider failure, a row that can no longer be saved, `chat:cancel`, a cancelled
request — ends in exactly one `settle`, and nothing escapes to the run's siblings.

The request comes from a `Plan`, not a fixed body: when the provider answers that the prompt is over the model's
context, the plan is asked once more with a smaller history cap (CONTRACT §5c), and a second overflow ends the run
as `context_length`. The input tokens the provider reports calibrate later estimates for its model.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel

from sidecar.chat.budget import shrunk_cap
from sidecar.chat.provider_pool import ProviderPool
from sidecar.chat.pump import ReplyNotSaved, ReplySaves, stream_attempt
from sidecar.chat.retries import MAX_ATTEMPTS, retry_delay
from sidecar.chat.runs import Run
from sidecar.chat.settle import NOT_SAVED_MESSAGE, Cancelled, Completed, Failed, Outcome, Settler, Skipped
from sidecar.chat.tokens import Calibration, ModelKey
from sidecar.logs import logger
from sidecar.providers.base import ProviderError


@dataclass(frozen=True)
class Prepared:
    """One built request, or why none could be built, with what its budget reported."""

    request: dict[str, Any] | None
    error: ProviderError | None = None
    context: dict[str, int] | None = None  # the `thinking` update's `context {tokens, limit, droppedCount}`
    history_tokens: float = 0.0  # what the kept history takes: the base of a shrunk retry's cap
    raw_input_tokens: float = 0.0  # the uncalibrated estimate of the whole request
    model: ModelKey | None = None


# Builds the request under a cap on the history's tokens (None: the agent's whole budget).
Plan = Callable[[float | None], Prepared]


class AgentCaller:
    def __init__(self, pool: ProviderPool, saves: ReplySaves, settler: Settler, calibration: Calibration) -> None:
        self._pool = pool
        self._saves = saves
        self._settler = settler
        self._calibration = calibration
        self._random = random.Random()

    async def call(self, run: Run, plan: Plan) -> dict[str, Any]:
        """Run to its end and return its `AgentResult`; `plan` builds the body, or says why none could be built."""
        try:
            prepared = _prepare(plan, None)
            with anyio.CancelScope(shield=True):  # `thinking` always goes first, even for a run born cancelled
                await run.updates.send("thinking", context=prepared.context)
            outcome: Outcome = Cancelled()
            with run.scope:
                await anyio.lowlevel.checkpoint()  # a run claimed already cancelled ends here, cancelled
                if prepared.error is not None:
                    outcome = Failed(prepared.error)
                else:
                    outcome = await self._attempts(run, prepared, plan)
        except anyio.get_cancelled_exc_class():
            await self._settler.settle(run, Cancelled())  # the request itself was cancelled
            raise
        except Exception as exc:  # a bug of ours costs this agent its reply, never its siblings theirs
            logger.opt(exception=exc).bind(conversationId=run.conversation_id).error("agent run failed")
            outcome = Failed(ProviderError("unknown"))
        return await self._settler.settle(run, outcome)

    async def _attempts(self, run: Run, prepared: Prepared, plan: Plan) -> Outcome:
        attempt = 1
        shrunk = False  # the one rebuild after a context overflow has been made
        while True:
            assert prepared.request is not None
            try:
                await self._attempt(run, prepared.request, first=attempt == 1 and not shrunk)
                self._calibrate(run, prepared)
                if run.reply.skipped:
                    return Skipped()
                if not run.reply.text:
                    raise _empty_reply()
                return Completed()
            except ReplyNotSaved:
                return Failed(ProviderError("unknown", retryable=False, safe_message=NOT_SAVED_MESSAGE))
            except ProviderError as error:
                if error.error_type == "context_length" and not shrunk and not run.reply.provider_text_seen:
                    shrunk = True  # once: a second overflow ends the run as `context_length`
                    prepared = _prepare(plan, shrunk_cap(prepared.history_tokens, error.overflow_tokens))
                    if prepared.error is not None:
                        return Failed(prepared.error)
                    continue
                delay = None if run.reply.provider_text_seen or not error.retryable else self._delay(attempt, error)
                if delay is None:
                    return Failed(error)
                attempt += 1
                await run.updates.send("retrying", attempt=attempt, retryAfterMs=round(delay * 1000))
                await anyio.sleep(delay)

    async def _attempt(self, run: Run, request: dict[str, Any], first: bool) -> None:
        async with self._pool.lease(run.participant) as provider:
            slots = self._pool.slots(run.participant.llm_config)
            if first and slots.available_tokens < 1:
                await run.updates.send("queued")  # at most once, right after `thinking`
            async with slots:
                await stream_attempt(run, provider, request, self._saves)

    def _calibrate(self, run: Run, prepared: Prepared) -> None:
        reported = getattr(run.reply.usage, "input_tokens", None)
        if prepared.model is not None and isinstance(reported, int):
            self._calibration.observe(prepared.model, prepared.raw_input_tokens, reported)

    def _delay(self, attempt: int, error: ProviderError) -> float | None:
        if attempt >= MAX_ATTEMPTS:
            return None
        return retry_delay(attempt, error.retry_after_s, self._random.random)


def _prepare(plan: Plan, history_cap: float | None) -> Prepared:
    try:
        return plan(history_cap)
    except Exception as exc:  # a bug of ours in building the request costs this agent its reply, and only that
        logger.opt(exception=exc).error("building an agent's request failed")
        return Prepared(None, ProviderError("unknown"))


def _empty_reply() -> ProviderError:
    return ProviderError("provider", safe_message="The provider returned an empty reply. Try again in a moment.")
