"""Auto mode (CONTRACT §5b): agents keep the conversation going on their own until a stop rule fires.

`sequential`: one speaker at a time, in rotation after the last agent that spoke, each seeing everything said
before it; an agent named as `@Name` in the latest message moves to the front. `rounds`: each round every enabled
agent answers at once, on what was said before the round. Every speaker turn is a run of the auto run's one
`Turn`, so every cancel finds it; the run ends with a saved notice, `auto:state`, and one `all:complete`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from sidecar.chat.context import AutoRunFacts, run_fits
from sidecar.chat.events import Emit
from sidecar.chat.history import AutoReads, load_auto_state
from sidecar.chat.runs import Run, RunRegistry, Turn
from sidecar.chat.speakers import in_order, mentioned, promote, rotation
from sidecar.chat.tokens import Calibration
from sidecar.logs import logger
from storage.db import Database
from storage.ids import IdFactory
from storage.records import ChatSettings, MessageRecord, ParticipantRecord
from storage.repositories import turns
from storage.repositories.history_reads import HistoryWindow

STARTED_NOTICE = "Auto mode started"
STOP_WORDS = {
    "all_skipped": "every agent skipped their turn",
    "max_messages": "the message limit was reached",
    "error": "an agent failed",
    "cancelled": "it was stopped",
    "user_message": "a new message was sent",
    "shutdown": "the app is shutting down",
    "context_full": "the conversation no longer fits in the agents' context",
}
NOTICE_SECONDS = 0.5  # saving the stop notice at shutdown is bounded: the database is about to close
# `context_full`: a run stops before its own messages take more than this share of the next speaker's budget.
CONTEXT_FULL_SHARE = 0.95

# Runs these claimed speaker turns at once on that history (`facts` by conversation agent id); their results.
RunAgents = Callable[
    [list[Run], list[ParticipantRecord], HistoryWindow, dict[str, AutoRunFacts]], Awaitable[list[dict[str, Any]]]
]


@dataclass
class _Progress:
    run_id: str
    rounds: int = 1
    replies: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    spoken: dict[str, int] = field(default_factory=dict)  # conversation agent id → speaker turns taken
    stop_reason: str | None = None
    announced: bool = False  # `auto:state running` was sent


class AutoRunner:
    def __init__(
        self,
        db: Database,
        ids: IdFactory,
        emit: Emit,
        runs: RunRegistry,
        run_agents: RunAgents,
        calibration: Calibration,
    ) -> None:
        self._db = db
        self._ids = ids
        self._emit = emit
        self._runs = runs
        self._run_agents = run_agents
        self._calibration = calibration

    async def run(self, turn: Turn, settings: ChatSettings, notice_saved: bool = False) -> dict[str, Any]:
        """Run until a stop rule fires; returns the `auto` part of the result and every speaker turn's result.

        `notice_saved`: the "Auto mode started" row is already there (`chat:startAuto` starts from it).
        """
        progress = _Progress(run_id=self._ids.next()[0])
        try:
            # Starting is one step a cancel cannot split (a `$/cancelRequest` right behind the turn once sent `stopped`
            # for a run never announced): it lands before the notice is saved, or after `running` is sent.
            with anyio.CancelScope(shield=True):
                if not notice_saved:
                    await self._db.run(
                        turns.add_system_message, self._ids, turn.conversation_id, STARTED_NOTICE, turn.trigger_id, None
                    )
                await self._state(turn, progress, "running")
                progress.announced = True
            if settings.style == "rounds":
                await self._rounds(turn, settings, progress)
            else:
                await self._sequential(turn, settings, progress)
        finally:
            if progress.announced:  # a run whose notice could not be saved never started: nothing to stop
                with anyio.CancelScope(shield=True):
                    await self._stop(turn, progress)
        return {
            "results": progress.results,
            "auto": {
                "runId": progress.run_id,
                "rounds": progress.rounds,
                "replies": progress.replies,
                "stopReason": progress.stop_reason,
            },
        }

    async def _sequential(self, turn: Turn, settings: ChatSettings, progress: _Progress) -> None:
        """One speaker at a time, each seeing everything said before it: the next enabled agent after the one
        that spoke last, unless the latest message names agents with `@Name` (the first named goes first). A
        round ends once every enabled agent has spoken in it."""
        previous: str | None = None  # the conversation agent that spoke last in this run
        spoke: set[str] = set()
        skipped: set[str] = set()
        while progress.stop_reason is None:
            if previous is not None and not await self._pause(turn, settings, progress):
                return
            reads = await self._read(turn)
            participants, latest = reads.participants, reads.latest
            enabled = in_order(participants)
            if not enabled:
                progress.stop_reason = turn.cancel_reason if turn.cancelled else "cancelled"
                return
            queue = rotation(enabled, previous if previous is not None else reads.last_speaker)
            if latest is not None:
                queue = promote(queue, mentioned(enabled, latest.content, latest.conversation_agent_id))
            speaker = queue[0]
            if not self._fits(reads, [speaker], progress):
                return
            [result] = await self._speak(turn, [speaker], participants, reads.window, latest, progress)
            self._take(result, turn, settings, progress)
            previous = speaker.conversation_agent_id
            spoke.add(previous)
            if result["status"] == "skipped":
                skipped.add(previous)
            else:
                skipped.discard(previous)
            current = {p.conversation_agent_id for p in enabled}
            if progress.stop_reason is None and current <= spoke:
                self._end_round(current, skipped, progress)
                spoke, skipped = set(), set()

    async def _rounds(self, turn: Turn, settings: ChatSettings, progress: _Progress) -> None:
        """Each round every enabled agent at once, on what was said before the round.

        A round never runs past `maxMessages`: the last ones have only as many speakers as replies are left, taken
        from the agents that have not skipped since the run's last reply first. So rounds cut short still hear every
        agent, and end as `all_skipped` once all of them have skipped since that reply (not one agent for ever).
        """
        first = True
        quiet: set[str] = set()  # agents that skipped since the last reply of this run
        while progress.stop_reason is None:
            if not first and not await self._pause(turn, settings, progress):
                return
            first = False
            reads = await self._read(turn)
            participants = reads.participants
            enabled = in_order(participants)
            if not enabled:
                progress.stop_reason = turn.cancel_reason if turn.cancelled else "cancelled"
                return
            speakers = _round_speakers(enabled, settings.max_messages - progress.replies, quiet)
            if not self._fits(reads, speakers, progress):
                return
            results = await self._speak(turn, speakers, participants, reads.window, reads.latest, progress)
            for result in results:
                self._take(result, turn, settings, progress)
            if progress.stop_reason is None:
                if any(r["status"] == "complete" for r in results):
                    quiet = set()
                quiet |= {r["conversationAgentId"] for r in results if r["status"] == "skipped"}
                self._end_round({p.conversation_agent_id for p in enabled}, quiet, progress)

    async def _speak(
        self,
        turn: Turn,
        speakers: list[ParticipantRecord],
        participants: list[ParticipantRecord],
        window: HistoryWindow,
        latest: MessageRecord | None,
        progress: _Progress,
    ) -> list[dict[str, Any]]:
        tags = {"runId": progress.run_id, "round": progress.rounds}
        reply_to = latest.id if latest is not None else turn.trigger_id
        runs = [self._runs.add_run(turn, p, reply_to, tags) for p in speakers]  # claimed in one step
        facts: dict[str, AutoRunFacts] = {}
        for p in speakers:
            spoken = progress.spoken.get(p.conversation_agent_id, 0)
            facts[p.conversation_agent_id] = AutoRunFacts(spoken)
            progress.spoken[p.conversation_agent_id] = spoken + 1
        return await self._run_agents(runs, participants, window, facts)

    async def _read(self, turn: Turn) -> AutoReads:
        assert turn.trigger_id is not None
        return await self._db.run(load_auto_state, turn.conversation_id, turn.trigger_id, self._calibration)

    def _fits(self, reads: AutoReads, speakers: list[ParticipantRecord], progress: _Progress) -> bool:
        """§5b `context_full`: the run's own messages must still fit in 95 % of each next speaker's budget."""
        for speaker in speakers:
            if not run_fits(speaker, reads.participants, reads.own_rows, self._calibration, CONTEXT_FULL_SHARE):
                progress.stop_reason = "context_full"
                return False
        return True

    def _take(self, result: dict[str, Any], turn: Turn, settings: ChatSettings, progress: _Progress) -> None:
        """Count one speaker turn and apply the stop rules it can fire (the first that fires wins)."""
        progress.results.append(result)
        if result["status"] == "complete":
            progress.replies += 1
        if progress.stop_reason is not None:
            return
        if turn.cancelled:
            progress.stop_reason = turn.cancel_reason
        elif result["status"] == "error":
            progress.stop_reason = "error"
        elif progress.replies >= settings.max_messages:
            progress.stop_reason = "max_messages"

    def _end_round(self, enabled: set[str], skipped: set[str], progress: _Progress) -> None:
        if enabled <= skipped:
            progress.stop_reason = "all_skipped"
        else:
            progress.rounds += 1

    async def _pause(self, turn: Turn, settings: ChatSettings, progress: _Progress) -> bool:
        """`delayMs` between speakers or rounds; a stop during the wait takes effect at once. False: stopped."""
        if settings.delay_ms > 0 and not turn.cancelled:
            with anyio.CancelScope() as pause:
                turn.pause = pause
                try:
                    await anyio.sleep(settings.delay_ms / 1000)
                finally:
                    turn.pause = None
        if turn.cancelled:
            progress.stop_reason = turn.cancel_reason
            return False
        return True

    async def _state(self, turn: Turn, progress: _Progress, state: str) -> None:
        params: dict[str, Any] = {
            "conversationId": turn.conversation_id,
            "runId": progress.run_id,
            "state": state,
            "replies": progress.replies,
        }
        if state == "stopped":
            params["reason"] = progress.stop_reason
        await self._emit("auto:state", params)

    async def _stop(self, turn: Turn, progress: _Progress) -> None:
        if progress.stop_reason is None:  # the request itself was cancelled, or a bug of ours ended the loop
            progress.stop_reason = turn.cancel_reason if turn.cancelled else "cancelled"
        notice = f"Auto mode stopped: {STOP_WORDS[progress.stop_reason]}"
        with anyio.move_on_after(NOTICE_SECONDS):
            try:
                await self._db.run(turns.add_system_message, self._ids, turn.conversation_id, notice, None, None)
            except Exception as exc:  # its conversation was deleted, or the database closed at shutdown
                logger.bind(exc_type=type(exc).__name__).warning("the auto-mode stop notice could not be saved")
        await self._state(turn, progress, "stopped")


def _round_speakers(enabled: list[ParticipantRecord], room: int, quiet: set[str]) -> list[ParticipantRecord]:
    """Every enabled agent, or, when fewer replies than agents are left, that many: the ones that have not skipped
    since the run's last reply first, in display order."""
    if room >= len(enabled):
        return enabled
    chosen = sorted(enabled, key=lambda p: p.conversation_agent_id in quiet)[:room]  # stable: display order kept
    return [p for p in enabled if p in chosen]
