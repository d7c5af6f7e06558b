"""The turns and agent runs in flight, registered the moment a turn is accepted.

Every cancel (`chat:cancel`, `onBusy: "interrupt"`, a data change, `$/cancelRequest`, shutdown, SIGTERM) finds its
runs here, so none can fall in a gap between "accepted" and "started": a run's cancel scope exists, and may be
cancelled, before the run's task does. A turn opened while the process is stopping is cancelled from birth.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio

from sidecar.chat.echo import EchoPrefixStripper
from sidecar.chat.events import AgentUpdates, Emit
from storage.records import ParticipantRecord

TurnKind = Literal["turn", "retry", "regenerate", "auto"]
# Why a turn was cancelled; an auto run reports it as its stop reason.
CancelReason = Literal["cancelled", "user_message", "shutdown"]


@dataclass
class Reply:
    """The reply an agent is writing: what was saved and sent, and what waits for the next flush."""

    stripper: EchoPrefixStripper
    message_id: str | None = None
    text: str = ""  # saved and sent: exactly what the client was shown
    pending: str = ""  # received, not yet saved and sent
    provider_text_seen: bool = False  # the provider has sent text: no more retries
    first_token_at: float | None = None
    last_flush: float = -math.inf
    usage: Any = None  # the provider's Usage, once reported
    request: dict[str, Any] | None = None  # the body this reply answers: its usage is estimated from it if unreported
    stop_reason: str | None = None
    skipped: bool = False  # an auto-mode answer of exactly `SKIP`: no reply row, a notice instead


@dataclass(eq=False)
class Run:
    """One agent answering one trigger: its cancel scope, its updates and its reply."""

    participant: ParticipantRecord
    trigger_id: str
    scope: anyio.CancelScope
    updates: AgentUpdates
    reply: Reply
    may_skip: bool = False  # auto mode: `SKIP` is an answer, held back until the text says otherwise
    version_of: str | None = None  # a new version of this reply (regenerate, a re-run trigger)
    started: float = field(default_factory=anyio.current_time)
    settled: anyio.Event = field(default_factory=anyio.Event)

    @property
    def conversation_id(self) -> str:
        return self.participant.conversation_id

    @property
    def conversation_agent_id(self) -> str:
        return self.participant.conversation_agent_id

    def elapsed_ms(self, moment: float | None = None) -> int:
        return round(((moment if moment is not None else anyio.current_time()) - self.started) * 1000)


@dataclass(eq=False)
class Turn:
    """A `processUserMessage` turn or a `chat:retryAgent` run: opened before its first await, closed once."""

    conversation_id: str
    kind: TurnKind
    trigger_id: str | None = None
    runs: list[Run] = field(default_factory=list)
    cancelled: bool = False
    cancel_reason: CancelReason = "cancelled"
    started: bool = False  # its runs were claimed (or it had none to run): it owes an `all:complete`
    closed: anyio.Event = field(default_factory=anyio.Event)
    pause: anyio.CancelScope | None = None  # an auto run's wait between speakers, cut short by a cancel

    def cancel(self, reason: CancelReason = "cancelled") -> int:
        """Cancel every run, now and any added later; returns how many running runs this stopped."""
        if not self.cancelled:
            self.cancelled, self.cancel_reason = True, reason
        if self.pause is not None:
            self.pause.cancel()
        stopped = 0
        for run in self.runs:
            if not run.settled.is_set() and not run.scope.cancel_called:
                run.scope.cancel()
                stopped += 1
        return stopped


class RunRegistry:
    """Open turns by conversation. Every method is synchronous: claiming and cancelling never await."""

    def __init__(self, emit: Emit, stopping: Callable[[], bool]) -> None:
        self._emit = emit
        self._stopping = stopping
        self._turns: dict[str, list[Turn]] = {}

    def open_turn(self, conversation_id: str, kind: TurnKind, trigger_id: str | None = None) -> Turn:
        turn = Turn(conversation_id, kind, trigger_id)
        if self._stopping():
            turn.cancel("shutdown")
        self._turns.setdefault(conversation_id, []).append(turn)
        return turn

    def add_run(
        self,
        turn: Turn,
        participant: ParticipantRecord,
        reply_to_id: str | None = None,
        tags: dict[str, Any] | None = None,
        version_of: str | None = None,
    ) -> Run:
        """Claim a run of `turn`; its reply answers `reply_to_id` (default: the turn's trigger), and its updates
        carry `tags` (an auto run's `runId` and `round`)."""
        assert turn.trigger_id is not None, "a run answers a known trigger"
        if self._stopping():
            turn.cancel("shutdown")
        scope = anyio.CancelScope()
        if turn.cancelled:
            scope.cancel()  # claimed already cancelled: it will start no provider call
        run = Run(  # no link back to its turn: a Turn ↔ Run cycle would wait for a full collection
            participant=participant,
            trigger_id=reply_to_id or turn.trigger_id,
            scope=scope,
            updates=AgentUpdates(self._emit, participant, turn.trigger_id, tags),
            reply=Reply(EchoPrefixStripper(participant.agent_name)),
            may_skip=turn.kind == "auto",
            version_of=version_of,
        )
        turn.runs.append(run)
        return run

    def close_turn(self, turn: Turn) -> bool:
        """Forget a finished turn; True when it is the last of its trigger to end (time for `all:complete`)."""
        turns = self._turns.get(turn.conversation_id, [])
        if turn in turns:
            turns.remove(turn)
        if not turns:
            self._turns.pop(turn.conversation_id, None)
        turn.closed.set()
        # The last turn of a trigger to close sends it: a retry that ends while the turn it retries is still open
        # leaves `all:complete` to that turn.
        peers = self.open_turns(turn.conversation_id)
        return not any(
            run.trigger_id == turn.trigger_id and not run.settled.is_set() for run in self.runs(turn.conversation_id)
        ) and not any(peer.started and peer.trigger_id == turn.trigger_id for peer in peers)

    def trigger_peers(self, turn: Turn) -> list[Turn]:
        """The other open turns answering the same trigger (retries of the turn's agents)."""
        return [
            peer for peer in self.open_turns(turn.conversation_id)
            if peer is not turn and peer.trigger_id == turn.trigger_id
        ]

    def open_turns(self, conversation_id: str | None = None) -> list[Turn]:
        if conversation_id is not None:
            return list(self._turns.get(conversation_id, ()))
        return [turn for turns in self._turns.values() for turn in turns]

    def runs(self, conversation_id: str | None = None) -> list[Run]:
        return [run for turn in self.open_turns(conversation_id) for run in turn.runs]

    def running(self, conversation_id: str | None = None) -> list[Run]:
        return [run for run in self.runs(conversation_id) if not run.settled.is_set()]

    def is_busy(self, conversation_id: str) -> bool:
        return bool(self._turns.get(conversation_id))

    def agent_is_running(self, conversation_id: str, conversation_agent_id: str) -> bool:
        """Running, or about to: a turn of the conversation still reading (it may claim this agent next) or an
        auto run (it may call on this agent any moment) counts, so two runs of one agent never overlap."""
        if any(not turn.started or turn.kind == "auto" for turn in self.open_turns(conversation_id)):
            return True
        return any(run.conversation_agent_id == conversation_agent_id for run in self.running(conversation_id))

    def cancel_runs(self, runs: Iterable[Run]) -> int:
        cancelled = 0
        for run in runs:
            if not run.settled.is_set() and not run.scope.cancel_called:
                run.scope.cancel()
                cancelled += 1
        return cancelled

    def cancel_all(self) -> None:
        for turn in self.open_turns():
            turn.cancel("shutdown")


async def wait_settled(runs: Iterable[Run], turns: Iterable[Turn], timeout: float) -> bool:
    """Wait (at most `timeout` s) until these runs have settled and these turns closed; False on time-out."""
    with anyio.move_on_after(timeout):
        for run in runs:
            await run.settled.wait()
        for turn in turns:
            await turn.closed.wait()
        return True
    return False
