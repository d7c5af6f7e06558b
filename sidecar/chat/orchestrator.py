"""The chat engine: turns fan out to every enabled agent at once; busy turns, retries, cancels, and data changes
made while agents run; the context preview.

A turn is registered (`RunRegistry.open_turn`) before its first await and its agent runs are claimed in one
synchronous step right after its reads, so every cancel finds them. Data changes that touch running agents go
through `changing`: the affected runs are cancelled and settle first, and a turn whose reads a change overtook
reads again before it claims its runs.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, Literal

import anyio

from sidecar.chat import history
from sidecar.chat.agent_call import AgentCaller
from sidecar.chat.auto import STARTED_NOTICE, AutoRunner
from sidecar.chat.call_plans import MESSAGE_TOO_LONG, plan_for
from sidecar.chat.context import (
    AgentContext,
    AutoRunFacts,
    ContextTooLong,
    Counting,
    TriggerNotFound,
    build_agent_context,
    to_wire,
)
from sidecar.chat.context_usage import context_usage
from sidecar.chat.events import Emit, send_all_complete
from sidecar.chat.provider_pool import ProviderPool
from sidecar.chat.pump import ReplySaves
from sidecar.chat.request_bodies import MissingLlmConfig
from sidecar.chat.runs import Run, RunRegistry, Turn, TurnKind, wait_settled
from sidecar.chat.settle import Settler
from sidecar.chat.speakers import in_order, rotation
from sidecar.chat.tokens import Calibration
from sidecar.errors import Busy, Conflict, NotFound, RuleViolation
from sidecar.logs import logger
from sidecar.secrets import SecretStore
from storage.db import Database
from storage.ids import IdFactory
from storage.records import ChatSettings, MessageRecord, ParticipantRecord
from storage.repositories import conversations, turns
from storage.repositories.history_reads import HistoryWindow

NO_AGENTS_NOTICE = "No agents are enabled for this conversation"
# How long a data change or an interrupting message waits for the runs it cancelled to settle.
SETTLE_WAIT_SECONDS = 5.0

OnBusy = Literal["interrupt", "reject"]


class ChatEngine:
    def __init__(
        self, db: Database, ids: IdFactory, secrets: SecretStore, emit: Emit, stopping: Callable[[], bool]
    ) -> None:
        self._db = db
        self._ids = ids
        self._emit = emit
        self._runs = RunRegistry(emit, stopping)
        self._pool = ProviderPool(secrets)
        saves = ReplySaves(db, ids)
        self._settler = Settler(db, ids, saves)
        self._calibration = Calibration()  # per-model token estimate corrections, learnt from reported usage
        self._caller = AgentCaller(self._pool, saves, self._settler, self._calibration)
        self._changes = _Changes()
        self._auto = AutoRunner(db, ids, emit, self._runs, self._run_all, self._calibration)

    # --- turns ---------------------------------------------------------------------------------------

    async def process_user_message(
        self, conversation_id: str, user_message_id: str | None, content: str | None, on_busy: OnBusy = "interrupt"
    ) -> dict[str, Any]:
        started = anyio.current_time()
        earlier = self._runs.open_turns(conversation_id)
        if earlier and on_busy == "reject":
            raise Busy("A turn is still running in this conversation")
        turn = self._runs.open_turn(conversation_id, "turn")  # from here on, every cancel finds this turn
        try:
            if earlier:
                for running in earlier:
                    running.cancel("user_message")
                await wait_settled((), earlier, SETTLE_WAIT_SECONDS)
            reads = await self._read_turn(turn, conversation_id, user_message_id, content)
            settings, trigger, participants = reads.settings, reads.trigger, reads.participants
            assert trigger is not None
            enabled = in_order(participants)
            if not enabled:
                turn.started = True
                await self._db.run(
                    turns.add_system_message, self._ids, conversation_id, NO_AGENTS_NOTICE, trigger.id, None
                )
                return _processing_result(trigger.id, [], started)
            if settings.mode == "auto":
                return await self._auto_run(turn, settings, started)
            speakers = [rotation(enabled, reads.last_speaker)[0]] if settings.mode == "round-robin" else enabled
            earlier_replies = reads.earlier_replies  # a re-run trigger: new versions of these
            runs = [  # claimed in one step, no await between
                self._runs.add_run(turn, p, version_of=earlier_replies.get(p.conversation_agent_id)) for p in speakers
            ]
            turn.started = True
            results = await self._run_all(runs, participants, reads.window)
            # A retry of one of its agents still running: the turn ends (all:complete, then its answer) after it.
            await wait_settled((), self._runs.trigger_peers(turn), math.inf)
            return _processing_result(trigger.id, results, started)
        finally:
            await self._close_turn(turn)

    async def start_auto(self, conversation_id: str) -> dict[str, Any]:
        """`chat:startAuto`: an auto run that continues from the history, starting from its own notice."""
        started = anyio.current_time()
        if self._runs.open_turns(conversation_id):
            raise Busy("A turn is still running in this conversation")
        turn = self._runs.open_turn(conversation_id, "auto")
        try:
            settings = await self._db.run(conversations.chat_settings, conversation_id)
            if settings.mode != "auto":
                raise RuleViolation("This conversation is not in auto mode", field="chatMode")
            notice = await self._db.run(
                turns.add_system_message, self._ids, conversation_id, STARTED_NOTICE, None, None
            )
            turn.trigger_id = notice.id
            return await self._auto_run(turn, settings, started, notice_saved=True)
        finally:
            await self._close_turn(turn)

    async def _auto_run(
        self, turn: Turn, settings: ChatSettings, started: float, notice_saved: bool = False
    ) -> dict[str, Any]:
        assert turn.trigger_id is not None
        turn.kind, turn.started = "auto", True
        outcome = await self._auto.run(turn, settings, notice_saved)
        result = _processing_result(turn.trigger_id, outcome["results"], started)
        result["auto"] = outcome["auto"]
        return result

    async def regenerate(
        self, conversation_id: str, conversation_agent_id: str, user_message_id: str
    ) -> dict[str, Any]:
        """`chat:regenerate`: that agent again on that turn's snapshot; a reply that completes becomes the
        active version n+1, a failed or cancelled one leaves the active version as it was."""
        trigger = await self._trigger(conversation_id, user_message_id)
        target, previous = await self._read_retry(conversation_id, conversation_agent_id, trigger.id)
        if previous is None:
            raise Conflict("That agent has no complete reply to this message to regenerate (use chat:retryAgent)")
        if self._runs.agent_is_running(conversation_id, target.conversation_agent_id):
            raise Busy("That agent is still answering in this conversation")
        turn = self._runs.open_turn(conversation_id, "regenerate", trigger.id)
        run = self._runs.add_run(turn, target, version_of=previous.id)  # claimed right after the checks
        turn.started = True
        try:
            participants, window = await self._read_window(conversation_id, trigger.id, target)
            if not any(row.id == trigger.id for row in window.rows):
                turn.cancel()  # its trigger was deleted just before the claim: the run ends cancelled
            return (await self._run_all([run], participants, window))[0]
        finally:
            await self._close_turn(turn)

    async def retry_agent(
        self, conversation_id: str, conversation_agent_id: str, user_message_id: str
    ) -> dict[str, Any]:
        trigger = await self._trigger(conversation_id, user_message_id)
        target, previous = await self._read_retry(conversation_id, conversation_agent_id, trigger.id)
        if previous is not None:
            raise Conflict("That agent already answered this message (use chat:regenerate)")
        if self._runs.agent_is_running(conversation_id, target.conversation_agent_id):
            raise Busy("That agent is still answering in this conversation")
        turn = self._runs.open_turn(conversation_id, "retry", trigger.id)
        run = self._runs.add_run(turn, target)  # claimed right after the checks: a second retry now is busy
        turn.started = True
        try:
            if not run.scope.cancel_called:  # a run claimed cancelled keeps the failed attempt it would replace
                await self._db.run(turns.delete_turn_rows, target.conversation_agent_id, trigger.id)
            participants, window = await self._read_window(conversation_id, trigger.id, target)
            if not any(row.id == trigger.id for row in window.rows):
                turn.cancel()  # its trigger was deleted just before the claim: the run ends cancelled
            return (await self._run_all([run], participants, window))[0]
        finally:
            await self._close_turn(turn)

    async def _read_retry(
        self, conversation_id: str, conversation_agent_id: str, trigger_id: str
    ) -> tuple[ParticipantRecord, MessageRecord | None]:
        """The agent and its active complete reply to the trigger, read after every data change that started
        before."""
        while True:
            await self._changes.wait_idle()
            generation = self._changes.generation
            participants = await self._db.run(turns.load_participants, conversation_id)
            target = _find_participant(participants, conversation_agent_id)
            previous = await self._db.run(turns.active_reply, target.conversation_agent_id, trigger_id)
            if generation == self._changes.generation:
                return target, previous

    async def _read_turn(
        self, turn: Turn, conversation_id: str, user_message_id: str | None, content: str | None
    ) -> history.TurnReads:
        """The conversation's mode, the trigger (saved first when it is new text), the participants and the
        newest history the budgets can hold (§5c), read after every data change that started before the read: one
        unit of work in the usual case."""
        await self._changes.wait_idle()
        generation = self._changes.generation
        if content is not None:
            reads = await self._db.run(history.start_turn, self._ids, conversation_id, content, self._calibration)
            trigger = reads.trigger
            assert trigger is not None
        else:
            assert user_message_id is not None
            trigger = await self._trigger(conversation_id, user_message_id)
            reads = await self._db.run(history.load_turn, conversation_id, trigger.id, self._calibration)
        turn.trigger_id = trigger.id
        while generation != self._changes.generation:  # a change overtook the read: read again
            await self._changes.wait_idle()
            generation = self._changes.generation
            reads = await self._db.run(history.load_turn, conversation_id, trigger.id, self._calibration)
        if not any(row.id == trigger.id for row in reads.window.rows):
            turn.cancel()  # its trigger was deleted meanwhile: its agents start cancelled
        return replace(reads, trigger=trigger)

    async def _read_window(
        self, conversation_id: str, up_to_id: str | None, target: ParticipantRecord
    ) -> tuple[list[ParticipantRecord], HistoryWindow]:
        """The participants and the history up to `up_to_id`, as much as `target`'s budget can hold."""
        return await self._db.run(
            history.load_window, conversation_id, up_to_id, self._calibration, target.conversation_agent_id
        )

    async def _run_all(
        self,
        runs: list[Run],
        participants: list[ParticipantRecord],
        window: HistoryWindow,
        auto_facts: dict[str, AutoRunFacts] | None = None,
    ) -> list[dict[str, Any]]:
        """Run these agents at once; each result in the order given. One run's end never touches another."""
        results: list[dict[str, Any]] = [{} for _ in runs]

        async def run_one(index: int, run: Run) -> None:
            facts = auto_facts.get(run.conversation_agent_id) if auto_facts is not None else None
            plan = plan_for(run, participants, window, facts, self._calibration)
            results[index] = await self._caller.call(run, plan)

        async with anyio.create_task_group() as tg:
            for index, run in enumerate(runs):
                tg.start_soon(run_one, index, run)
        return results

    async def _close_turn(self, turn: Turn) -> None:
        with anyio.CancelScope(shield=True):
            if self._runs.close_turn(turn) and turn.started and turn.trigger_id is not None:
                await send_all_complete(self._emit, turn.conversation_id, turn.trigger_id)

    async def _trigger(self, conversation_id: str, message_id: str) -> MessageRecord:
        trigger = await self._db.run(turns.get_message, message_id)
        if trigger is None or trigger.conversation_id != conversation_id:
            raise NotFound("No such message in this conversation", entity="message", id=message_id)
        if trigger.role not in ("user", "system"):
            raise RuleViolation("A turn is started by a user or system message, not by an agent's reply")
        return trigger

    # --- control -------------------------------------------------------------------------------------

    def cancel(self, conversation_id: str, conversation_agent_id: str | None) -> int:
        """`chat:cancel`: the agents that were running; a whole-conversation cancel also stops turns not yet
        started."""
        if conversation_agent_id is None:
            return sum(turn.cancel() for turn in self._runs.open_turns(conversation_id))
        runs = [r for r in self._runs.running(conversation_id) if r.conversation_agent_id == conversation_agent_id]
        return self._runs.cancel_runs(runs)

    def cancel_all(self) -> None:
        """The process is stopping: cancel everything, and settle what was cancelled quickly."""
        self._settler.hurry()
        self._runs.cancel_all()

    @asynccontextmanager
    async def changing(
        self,
        affects: Callable[[Run], bool],
        conversation_id: str | None = None,
        kinds: tuple[TurnKind, ...] = ("turn", "retry", "auto"),
    ) -> AsyncIterator[None]:
        """Around a data change: cancel the runs it `affects` (and, with `conversation_id`, every turn of those
        `kinds` in that conversation) and let them settle first; turns reading meanwhile read again after it."""
        async with self._changes.change():
            whole = self._runs.open_turns(conversation_id) if conversation_id is not None else []
            for turn in whole:
                if turn.kind in kinds:
                    turn.cancel()  # runs it claims later start cancelled
            cancelled: list[Run] = [run for run in self._runs.running() if affects(run)]
            cancelled += [run for turn in whole if turn.kind in kinds for run in turn.runs if run not in cancelled]
            self._runs.cancel_runs(cancelled)
            # Runs only, not turns: a turn still reading waits for this change to end before it claims any.
            if not await wait_settled(cancelled, (), SETTLE_WAIT_SECONDS):
                logger.warning("cancelled agents did not settle before a data change")
            yield

    async def build_context(self, conversation_id: str, agent_id: str, user_message_id: str | None) -> dict[str, Any]:
        participants, window = await self._db.run(
            history.load_window, conversation_id, user_message_id, self._calibration, agent_id
        )
        target = _find_participant(participants, agent_id)
        counting = Counting(self._calibration, None, window.older_visible, tuple(window.older_visible_ids))
        try:
            context: AgentContext = build_agent_context(
                target, participants, window.rows, user_message_id, counting=counting
            )
        except TriggerNotFound:
            raise NotFound("No such message in this conversation", entity="message", id=user_message_id) from None
        except MissingLlmConfig:
            raise RuleViolation("This agent has no LLM configuration") from None
        except ContextTooLong:
            raise RuleViolation(MESSAGE_TOO_LONG, field="userMessageId") from None
        return to_wire(context)

    async def context_usage(self, conversation_id: str) -> list[dict[str, Any]]:
        """`conversations:contextUsage`: how full each enabled agent's context would be on its next call."""
        participants, sizes = await self._db.run(history.load_sizes, conversation_id)
        return context_usage(participants, sizes, self._calibration)

    async def aclose(self) -> None:
        await self._pool.aclose()


class _Changes:
    """Data changes in progress (across all conversations: they are short and rare) and a generation count that
    tells a turn whether one started after its read."""

    def __init__(self) -> None:
        self.generation = 0
        self._active = 0
        self._idle = anyio.Event()
        self._idle.set()

    @asynccontextmanager
    async def change(self) -> AsyncIterator[None]:
        self.generation += 1
        self._active += 1
        if self._idle.is_set():
            self._idle = anyio.Event()
        try:
            yield
        finally:
            self.generation += 1
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    async def wait_idle(self) -> None:
        while self._active:
            await self._idle.wait()


def _find_participant(participants: Iterable[ParticipantRecord], wanted_id: str) -> ParticipantRecord:
    """By conversation agent id or agent id."""
    for participant in participants:
        if wanted_id in (participant.conversation_agent_id, participant.agent_id):
            return participant
    raise NotFound("That agent is not in this conversation", entity="conversationAgent", id=wanted_id)


def _processing_result(user_message_id: str, results: list[dict[str, Any]], started: float) -> dict[str, Any]:
    statuses = [result["status"] for result in results]
    return {
        "userMessageId": user_message_id,
        "totalAgents": len(results),
        "successfulAgents": statuses.count("complete"),
        "failedAgents": statuses.count("error"),
        "cancelledAgents": statuses.count("cancelled"),
        "totalDurationMs": round((anyio.current_time() - started) * 1000),
        "agentResults": results,
    }
