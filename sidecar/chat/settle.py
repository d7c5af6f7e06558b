"""The one place an agent run ends: commit its row, then send its one terminal update, shielded and bounded.

A storage failure while settling is logged and the terminal update is still sent: one agent's failure never
becomes another's, and a run never ends without its terminal update (unless the client is gone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import anyio

from sidecar.catalogue import lookup
from sidecar.chat.cost import reply_usage
from sidecar.chat.pump import ReplyNotSaved, ReplySaves, flush
from sidecar.chat.runs import Run
from sidecar.logs import logger
from sidecar.providers.base import ProviderError
from storage.db import Database
from storage.ids import IdFactory
from storage.repositories import messages, turns

# Once the process is stopping, settling may take this long: shutdown must end inside the contract's 2 s.
HURRIED_SETTLE_SECONDS = 0.5
MIN_HURRIED_SETTLE_SECONDS = 0.2  # a run cancelled late still gets a moment to commit its row
NOT_SAVED_MESSAGE = "The reply could not be saved. Try again in a moment."


@dataclass(frozen=True)
class Completed:
    pass


@dataclass(frozen=True)
class Failed:
    error: ProviderError


@dataclass(frozen=True)
class Cancelled:
    pass


@dataclass(frozen=True)
class Skipped:
    """Auto mode: the agent answered exactly `SKIP`; a notice is saved instead of a reply."""


Outcome = Completed | Failed | Cancelled | Skipped
_STATUS: dict[type, str] = {Completed: "complete", Failed: "error", Cancelled: "cancelled", Skipped: "skipped"}


class Settler:
    def __init__(self, db: Database, ids: IdFactory, saves: ReplySaves) -> None:
        self._db = db
        self._ids = ids
        self._saves = saves
        self._deadline = math.inf  # set once the process is stopping
        self._settling: set[anyio.CancelScope] = set()

    def hurry(self) -> None:
        """The process is stopping: every settle, running or to come, gets a deadline."""
        self._deadline = anyio.current_time() + HURRIED_SETTLE_SECONDS
        for scope in self._settling:
            scope.deadline = min(scope.deadline, self._deadline)

    async def settle(self, run: Run, outcome: Outcome) -> dict[str, Any]:
        """Write the run's final row and send its terminal update; returns its `AgentResult`.

        Shielded: once a run ends, its end is recorded. Unbounded while the process runs (a busy database is
        waited for, never skipped); bounded once it is stopping, when the terminal update goes out regardless.
        """
        with anyio.CancelScope(shield=True):
            try:
                deadline = max(self._deadline, anyio.current_time() + MIN_HURRIED_SETTLE_SECONDS)
                with anyio.CancelScope(deadline=deadline if math.isfinite(self._deadline) else math.inf) as bounded:
                    self._settling.add(bounded)
                    try:
                        return await self._settle(run, outcome)
                    finally:
                        self._settling.discard(bounded)
                logger.bind(conversationId=run.conversation_id).warning("settling an agent run timed out")
                if isinstance(outcome, Completed):
                    outcome = Cancelled()  # its row could not be marked complete: it ends as the stop left it
                with anyio.move_on_after(HURRIED_SETTLE_SECONDS):
                    return await self._send_terminal(run, outcome, None, usage_wire(run))
                return agent_result(run, _STATUS[type(outcome)])
            finally:
                run.settled.set()

    async def _settle(self, run: Run, outcome: Outcome) -> dict[str, Any]:
        reply = run.reply
        if not isinstance(outcome, Completed | Skipped):
            reply.pending += reply.stripper.finish()
            if reply.pending:
                try:
                    await flush(run, self._saves, shield=False)
                except ReplyNotSaved:  # the text that could not be saved is not shown either
                    pass
        usage = usage_wire(run)  # after the last flush: an estimate counts the whole saved text
        notice_id = None
        version = 1
        try:
            if reply.message_id is not None and run.version_of is not None and not isinstance(outcome, Completed):
                # A new version that did not complete leaves no trace: the active version stays as it was.
                await self._db.run(messages.delete_message, reply.message_id)
                reply.message_id = None
            elif reply.message_id is not None:
                status = _STATUS[type(outcome)]
                await self._db.run(
                    turns.finish_reply, reply.message_id, status, reply.text, usage, reply.stop_reason
                )
                if run.version_of is not None:
                    version = (await self._db.run(turns.activate_version, reply.message_id)).version
            if isinstance(outcome, Failed) and run.version_of is None:
                notice_id = await self._save_notice(run, outcome.error)
            elif isinstance(outcome, Skipped):
                notice_id = await self._save_skip_notice(run)
        except Exception as exc:  # the rows went away with their conversation, or the database closed
            logger.bind(exc_type=type(exc).__name__, conversationId=run.conversation_id).warning(
                "an agent's final state could not be saved"
            )
        return await self._send_terminal(run, outcome, notice_id, usage, version)

    async def _save_notice(self, run: Run, error: ProviderError) -> str:
        p = run.participant
        logger.bind(
            provider=p.llm_config.provider if p.llm_config else None,
            statusCode=error.status_code,
            safeMessage=error.safe_message,
            errorType=error.error_type,
            conversationId=p.conversation_id,
            agentId=p.agent_id,
        ).warning("agent call failed")
        notice = await self._db.run(
            turns.add_system_message,
            self._ids,
            p.conversation_id,
            f"Agent {p.agent_name}: {error.safe_message}",
            run.trigger_id,
            p.conversation_agent_id,
        )
        return notice.id

    async def _save_skip_notice(self, run: Run) -> str:
        p = run.participant
        notice = await self._db.run(
            turns.add_system_message,
            self._ids,
            p.conversation_id,
            f"{p.agent_name} skipped their turn",
            run.trigger_id,
            p.conversation_agent_id,
        )
        return notice.id

    async def _send_terminal(
        self, run: Run, outcome: Outcome, notice_id: str | None, usage: dict[str, Any], version: int = 1
    ) -> dict[str, Any]:
        reply = run.reply
        if isinstance(outcome, Completed):
            fields: dict[str, Any] = {
                "messageId": reply.message_id,
                "usage": usage,
                "stopReason": reply.stop_reason,
                "version": version,
            }
            status = "complete"
        elif isinstance(outcome, Skipped):
            fields = {"messageId": notice_id}
            status = "skipped"
        elif isinstance(outcome, Failed):
            error = outcome.error
            fields = {"error": error.safe_message, "errorType": error.error_type, "retryable": error.retryable}
            fields["messageId"] = notice_id
            status = "error"
        else:
            fields = {"messageId": reply.message_id}
            status = "cancelled"
        if not run.updates.settled:
            await run.updates.send(status, **fields)
        return agent_result(run, status, **fields)


def usage_wire(run: Run) -> dict[str, Any]:
    """The reply's `Usage`: its tokens (the provider's, else estimated), its cost and its timings."""
    reply = run.reply
    p = run.participant
    model = lookup(p.llm_config.provider, p.model) if p.llm_config is not None else None
    usage = reply_usage(reply.usage, reply.request, reply.text, model.pricing if model is not None else None)
    if reply.first_token_at is not None:
        usage["firstTokenMs"] = run.elapsed_ms(reply.first_token_at)
    usage["totalMs"] = run.elapsed_ms()
    return usage


def agent_result(run: Run, status: str, **fields: Any) -> dict[str, Any]:
    p = run.participant
    result: dict[str, Any] = {
        "conversationAgentId": p.conversation_agent_id,
        "agentId": p.agent_id,
        "agentName": p.agent_name,
        "status": status,
        "durationMs": run.elapsed_ms(),
    }
    if run.reply.first_token_at is not None:
        result["firstTokenMs"] = run.elapsed_ms(run.reply.first_token_at)
    result.update({k: v for k, v in fields.items() if v is not None and k not in ("stopReason", "version")})
    return result
