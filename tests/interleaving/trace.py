"""The contract's promises about one session's stdout, checked frame by frame as it is read (CONTRACT §1, §2, §5, §6).

A `TraceChecker` is told about every request before it is written (`register`), then fed the frames in the order
the sidecar wrote them. It keeps each agent's *runs* — one run is one `thinking … terminal` sequence of one agent
for one turn; a `chat:retryAgent` run of the same agent and turn is a new run, its `seq` starting again at 1 — and
records every broken promise in `violations` (it never raises, so a test can report them all with context).

Checked as frames arrive (so they hold after every step):
  - a response answers a request that was sent, exactly once, with a result or an error the contract allows for
    that method in that situation (never -32603, never -32602: the tests only send valid params);
  - each run: `thinking` at seq 1, then seq 2, 3, … with no gap; `queued` at most once and right after `thinking`;
    `retrying` only before any text, attempts 2 then 3; one `messageId` for all its `streaming` updates; exactly one
    terminal update, nothing after it; `complete` names the streamed reply; `cancelled` names it iff text was sent;
  - a new run of an agent for a turn never starts while its previous run there is still going;
  - a turn's first agent never starts while another turn of the same conversation is still running (`onBusy`
    interrupt: the running turn is cancelled *then* the new one starts; checked when the turn answers, since only
    then is its request known) — a retry written after the turn's request may overlap it;
  - `all:complete` for a turn only when no run of that turn is running;
  - a `processUserMessage` result comes after its turn's `all:complete`, agrees with the runs' terminal updates and
    covers every agent its turn started; a `chat:retryAgent` result agrees with the run it caused.
Auto runs (CONTRACT §5b, §6): a run is `auto:state running` … `auto:state stopped`; each of its speaker turns is a
run as above (seq from 1, one terminal update: `complete`, `error`, `cancelled` or `skipped`), and
  - every update of a speaker turn carries the run's `runId` and one `round` (1…); a speaker turn only starts while
    its run is running, never before every speaker turn of an earlier round has ended; all name the message that
    started the run; `skipped` only in an auto run, without text, naming its system row;
  - a conversation has one auto run at a time; `stopped` once, after every speaker turn ended, with `replies` equal to
    the replies completed and a reason from the contract's list that what happened explains (`all_skipped`: the last
    speaker skipped; `error`: one failed; `max_messages`; `user_message`: a new message; `shutdown`; `cancelled`:
    something that cancels was sent);
  - its request's result has `auto {runId, rounds, replies, stopReason}` agreeing with the frames, one agentResult per
    speaker turn, and one `all:complete`, sent when the run stopped; `replies` ≤ `maxMessages`, no speaker after the
    run's error or its last allowed reply, one speaker at a time in `sequential` style, each agent once per round in
    `rounds` style (settings as `modes.SettingsLog` says they may have been); once a switch away from `auto` has
    answered, the run says nothing more;
  - a plain turn of a conversation certainly in `round-robin` mode runs one agent; one certainly in `auto` mode never
    answers without `auto` (unless no agent was enabled); `chat:startAuto` is refused as `validation` only when the mode
    may not have been `auto`, and `busy` (for it and `onBusy: "reject"`) only while another turn was in flight.
Checked when the session is quiet (`check_settled`): every request answered, every run ended, every auto run stopped,
and the end of a turn's last run (or of an auto run) followed by an `all:complete`. `check_replies` compares the
streamed text of every settled run with the saved row (for a speaker turn: its `replyToId` no older than the latest
reply completed before it started) and every skip with its saved notice.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.interleaving.modes import SettingsLog, Sighting

TERMINAL = frozenset({"complete", "error", "cancelled", "skipped"})
STATUSES = TERMINAL | {"thinking", "queued", "retrying", "streaming"}
ERROR_TYPES = frozenset(
    {"auth", "rate_limit", "validation", "context_length", "configuration", "timeout", "provider", "network", "unknown"}
)
ROW_STATUS = {"complete": "complete", "cancelled": "cancelled", "error": "error"}  # terminal → its reply's row
TURN_METHODS = frozenset({"processUserMessage", "chat:retryAgent", "chat:startAuto"})
RUN_METHODS = frozenset({"processUserMessage", "chat:startAuto"})  # answered with a ProcessingResult
STOP_REASONS = frozenset(
    {"all_skipped", "max_messages", "error", "cancelled", "user_message", "shutdown", "context_full"}
)
# What may stop a turn or an auto run as `cancelled`: a cancel, a data change while agents run, a mode switch.
CANCELLING = frozenset({"chat:cancel", "conversations:update", "conversations:delete", "messages:delete",
                        "conversationAgents:remove", "conversationAgents:update", "agents:delete"})
SKIP_NOTICE = "{name} skipped their turn"
# Engine bugs these checks found (both fixed: the last round is cut to the replies left; a turn re-reads its mode
# after a data change). A checker built with `tolerate` counts their breaches in `tolerated` instead of
# `violations`, to look past one while a fix is under way; CI tolerates none.
KNOWN_ENGINE_BUGS: dict[str, str] = {
    "rounds-overshoot": "rounds style: every agent of the last round speaks, so replies pass maxMessages",
    "stale-mode": "a turn that read `auto` before a switch away from it had applied runs a whole auto run after it",
}

# What each method may legitimately answer instead of a result (error kinds; "cancelled" is -32800).
ALLOWED_ERRORS: dict[str, frozenset[str]] = {
    "processUserMessage": frozenset({"not_found", "busy", "shutting_down", "cancelled"}),
    "chat:retryAgent": frozenset({"not_found", "conflict", "busy", "shutting_down", "cancelled"}),
    "chat:startAuto": frozenset({"not_found", "busy", "validation", "shutting_down", "cancelled"}),
    "chat:cancel": frozenset({"not_found", "shutting_down"}),
    "conversations:update": frozenset({"not_found", "shutting_down"}),
    "conversationAgents:add": frozenset({"not_found", "conflict", "shutting_down"}),
    "conversationAgents:remove": frozenset({"not_found", "shutting_down"}),
    "conversationAgents:update": frozenset({"not_found", "shutting_down"}),
    "conversationAgents:list": frozenset({"not_found", "shutting_down"}),
    "conversations:delete": frozenset({"not_found", "shutting_down"}),
    "messages:create": frozenset({"not_found", "shutting_down"}),
    "messages:delete": frozenset({"not_found", "shutting_down"}),
    "messages:list": frozenset({"not_found", "shutting_down"}),
}
_KIND_OF_CODE = {-32010: "not_found", -32011: "conflict", -32012: "validation", -32800: "cancelled"}


def request_key(request_id: Any) -> str:
    return json.dumps(request_id)


@dataclass
class Request:
    id: Any
    method: str
    params: dict[str, Any]
    sent_at: int  # trace position when written: nothing before it can answer it
    after_shutdown: bool  # written after a `shutdown` request: must be refused as shutting_down
    cancel_sent: bool = False
    response: dict[str, Any] | None = None
    answered_at: int | None = None

    @property
    def error_kind(self) -> str | None:
        if self.response is None or "error" not in self.response:
            return None
        return error_kind(self.response["error"])


def error_kind(error: dict[str, Any]) -> str:
    code = error.get("code")
    data = error.get("data")
    if code == -32014 and isinstance(data, dict) and data.get("kind") in ("busy", "shutting_down"):
        return str(data["kind"])
    return _KIND_OF_CODE.get(code, f"code {code}")  # type: ignore[arg-type]


@dataclass
class Run:
    """One agent's updates for one turn, from `thinking` to its terminal update."""

    conversation_id: str
    ca: str
    um: str
    agent_name: str
    started_at: int
    maybe_retry: bool  # a chat:retryAgent for this agent and turn had been sent when it started
    updates: list[dict[str, Any]] = field(default_factory=list)
    message_id: str | None = None
    text: str = ""
    terminal: dict[str, Any] | None = None
    ended_at: int | None = None
    run_id: str | None = None  # a speaker turn of this auto run
    round: Any = None
    last_text_at: int | None = None  # trace position of its last streaming or complete update

    @property
    def running(self) -> bool:
        return self.terminal is None

    @property
    def status(self) -> str | None:
        return self.terminal["status"] if self.terminal else None

    def describe(self) -> str:
        where = f"round {self.round} of auto run {self.run_id[-6:]}" if self.run_id else f"turn {self.um[-6:]}"
        return f"{self.agent_name} in {where} ({' '.join(u['status'] for u in self.updates)})"

    def outcome(self) -> tuple[str, str | None, str | None]:
        """(agent, status, the reply's id if it completed): what its request's result must say about it."""
        message_id = self.terminal.get("messageId") if self.terminal and self.status == "complete" else None
        return self.ca, self.status, message_id


@dataclass
class AutoRun:
    """One auto run: from `auto:state running` to `auto:state stopped`, and its speaker turns in start order."""

    run_id: str
    conversation_id: str
    started_at: int
    um: str | None = None  # the message that started it: every speaker turn's userMessageId
    speakers: list[Run] = field(default_factory=list)
    stopped_at: int | None = None
    reason: Any = None
    replies: Any = None
    request: Request | None = None  # the processUserMessage or chat:startAuto it answered

    @property
    def running(self) -> bool:
        return self.stopped_at is None

    def completed(self) -> int:
        return sum(1 for s in self.speakers if s.status == "complete")

    def describe(self) -> str:
        turns = ", ".join(f"{s.agent_name} r{s.round} {s.status or 'running'}" for s in self.speakers)
        return f"auto run {self.run_id[-6:]} [{turns}]"


class TraceChecker:
    """`validate_result(method, result)` (the schema check) raises for a result that breaks the schema."""

    def __init__(
        self, validate_result: Callable[[str, Any], None] | None = None, tolerate: frozenset[str] = frozenset()
    ) -> None:
        self._validate_result = validate_result
        self._tolerate = tolerate
        self.tolerated: Counter[str] = Counter()  # known engine bug → breaches seen
        self.requests: dict[str, Request] = {}
        self.order: list[Request] = []
        self.runs: dict[tuple[str, str], list[Run]] = {}
        self.turn_runs: dict[str, list[Run]] = {}  # userMessageId → runs
        self.turn_conversation: dict[str, str] = {}
        self.all_complete: dict[str, list[int]] = {}
        self.retries_sent: dict[tuple[str, str], int] = {}  # (ca, um) → trace position of the first retry sent
        self.auto_runs: dict[str, AutoRun] = {}  # runId → its run
        self.settings = SettingsLog()
        self._settings_sent: dict[str, Sighting] = {}  # conversations:update request → what it may have written
        self._request_cancelled = False  # a $/cancelRequest was sent
        self.violations: list[str] = []
        self.counts: Counter[str] = Counter()
        self.position = 0
        self._shutdown_sent = False
        self._sigterm_sent = False

    # --- what the test sends ----------------------------------------------------------------------------------

    def register(self, request_id: Any, method: str, params: dict[str, Any], sent_at: int) -> Request:
        request = Request(request_id, method, params, sent_at, self._shutdown_sent)
        self.requests[request_key(request_id)] = request
        self.order.append(request)
        if method == "shutdown":
            self._shutdown_sent = True
        if method == "chat:retryAgent":
            self.retries_sent.setdefault((params["conversationAgentId"], params["userMessageId"]), sent_at)
        if method == "conversations:update":
            self._settings_sent[request_key(request_id)] = self.settings.update_sent(params["id"], sent_at, params)
        return request

    def cancel_requested(self, request_id: Any) -> None:
        request = self.requests.get(request_key(request_id))
        if request is not None:
            request.cancel_sent = True
            self._request_cancelled = True

    def sigterm_sent(self) -> None:
        self._sigterm_sent = True

    # --- what the sidecar writes --------------------------------------------------------------------------------

    def feed(self, trace: list[Any]) -> None:
        while self.position < len(trace):
            frame, at = trace[self.position], self.position
            self.position += 1
            if isinstance(frame, list):
                self._fail(at, f"a batch answer, but no batch was sent: {str(frame)[:200]}")
            elif not isinstance(frame, dict):
                self._fail(at, f"a frame that is not an object: {frame!r:.200}")
            elif "method" in frame:
                self._notification(at, frame)
            else:
                self._response(at, frame)

    def _fail(self, at: int, what: str, known_bug: str | None = None) -> None:
        if known_bug in self._tolerate:
            self.tolerated[f"{known_bug}: {KNOWN_ENGINE_BUGS[known_bug]}"] += 1
        else:
            self.violations.append(f"[frame {at}] {what}")

    def _notification(self, at: int, frame: dict[str, Any]) -> None:
        params = frame.get("params") or {}
        if frame["method"] == "agent:update":
            self._update(at, params)
        elif frame["method"] == "all:complete":
            self._all_complete(at, params)
        elif frame["method"] == "auto:state":
            self._auto_state(at, params)
        else:
            self._fail(at, f"unexpected notification {frame['method']}")

    # --- agent:update ---------------------------------------------------------------------------------------------

    def _update(self, at: int, u: dict[str, Any]) -> None:
        self.counts["agent updates checked"] += 1
        key = (u["conversationAgentId"], u["userMessageId"])
        status, seq = u.get("status"), u.get("seq")
        if status not in STATUSES:
            self._fail(at, f"unknown status {status!r}")
            return
        runs = self.runs.setdefault(key, [])
        current = runs[-1] if runs else None
        if seq == 1:
            self._start_run(at, u, key, current)
            return
        if current is None or not current.running:
            after = "after its terminal update" if current else "without a run (no thinking at seq 1)"
            self._fail(at, f"{u['agentName']} sent {status} seq {seq} {after} (turn {key[1][-6:]})")
            return
        previous = current.updates[-1]
        if seq != previous["seq"] + 1:
            self._fail(at, f"{current.describe()}: seq {seq} after {previous['seq']}")
        if u["conversationId"] != current.conversation_id:
            self._fail(at, f"{current.describe()}: conversationId changed")
        if (u.get("runId"), u.get("round")) != (current.run_id, current.round):
            self._fail(at, f"{current.describe()}: {status} seq {seq} has runId/round {u.get('runId')}/"
                           f"{u.get('round')}, its thinking had {current.run_id}/{current.round}")
        current.updates.append(u)
        getattr(self, "_on_" + status)(at, current, u)

    def _start_run(self, at: int, u: dict[str, Any], key: tuple[str, str], current: Run | None) -> None:
        if u["status"] != "thinking":
            self._fail(at, f"{u['agentName']}'s seq 1 is {u['status']}, not thinking")
        if current is not None and current.running:
            self._fail(at, f"{current.describe()}: a new run started (seq 1) before its terminal update")
        conversation, um = u["conversationId"], u["userMessageId"]
        maybe_retry = key in self.retries_sent and self.retries_sent[key] <= at
        run = Run(conversation, key[0], um, u["agentName"], at, maybe_retry, [u], run_id=u.get("runId"),
                  round=u.get("round"))
        self.runs[key].append(run)
        self.turn_runs.setdefault(um, []).append(run)
        self.turn_conversation[um] = conversation
        self.counts["runs started"] += 1
        if run.run_id is not None:
            self._speaker_starts(at, run)

    def _speaker_starts(self, at: int, run: Run) -> None:
        """A speaker turn of an auto run: while its run runs, in a round no earlier than the last, once every speaker
        turn of the earlier rounds has ended, naming the message that started the run."""
        self.counts["speaker turns started"] += 1
        auto = self.auto_runs.get(run.run_id or "")
        if auto is None or not auto.running:
            self._fail(at, f"{run.describe()}: a speaker turn of an auto run that is not running")
            return
        if not isinstance(run.round, int) or isinstance(run.round, bool) or run.round < 1:
            self._fail(at, f"{run.describe()}: round {run.round!r} (every update of an auto run has a round 1…)")
        else:
            rounds = [s.round for s in auto.speakers if isinstance(s.round, int)]
            if rounds and run.round < max(rounds):
                self._fail(at, f"{run.describe()}: round {run.round} after round {max(rounds)} had started")
            for earlier in auto.speakers:
                if earlier.running and isinstance(earlier.round, int) and earlier.round < run.round:
                    self._fail(at, f"{run.describe()} started while {earlier.describe()} of an earlier round runs")
        if run.conversation_id != auto.conversation_id:
            self._fail(at, f"{run.describe()}: its auto run belongs to conversation {auto.conversation_id}")
        if auto.um is None:
            auto.um = run.um
        elif auto.um != run.um:
            self._fail(at, f"{run.describe()}: userMessageId {run.um}, but its run was started by {auto.um}")
        auto.speakers.append(run)

    def turn_runs_of(self, conversation_id: str) -> list[Run]:
        return [r for um, runs in self.turn_runs.items() if self.turn_conversation[um] == conversation_id for r in runs]

    def _on_thinking(self, at: int, run: Run, u: dict[str, Any]) -> None:
        self._fail(at, f"{run.describe()}: thinking again at seq {u['seq']}")

    def _on_queued(self, at: int, run: Run, u: dict[str, Any]) -> None:
        if u["seq"] != 2:
            self._fail(at, f"{run.describe()}: queued must come right after thinking (at seq 2)")

    def _on_retrying(self, at: int, run: Run, u: dict[str, Any]) -> None:
        if run.message_id is not None:
            self._fail(at, f"{run.describe()}: retrying after text was streamed")
        attempts = [x.get("attempt") for x in run.updates if x["status"] == "retrying"]
        if attempts != list(range(2, 2 + len(attempts))):
            self._fail(at, f"{run.describe()}: retry attempts {attempts}, expected 2, 3")

    def _on_streaming(self, at: int, run: Run, u: dict[str, Any]) -> None:
        if not u.get("messageId") or not isinstance(u.get("delta"), str):
            self._fail(at, f"{run.describe()}: streaming without messageId or delta")
            return
        if run.message_id is None:
            run.message_id = u["messageId"]
        elif run.message_id != u["messageId"]:
            self._fail(at, f"{run.describe()}: streaming updates name two rows")
        run.text += u["delta"]
        run.last_text_at = at

    def _terminal(self, at: int, run: Run, u: dict[str, Any]) -> None:
        run.terminal, run.ended_at = u, at
        self.counts["terminal updates checked"] += 1
        self.counts[f"terminal updates: {u['status']}"] += 1

    def _on_complete(self, at: int, run: Run, u: dict[str, Any]) -> None:
        self._terminal(at, run, u)
        run.last_text_at = at
        if run.message_id is None:
            self._fail(at, f"{run.describe()}: complete without any streaming update")
        elif u.get("messageId") != run.message_id:
            self._fail(at, f"{run.describe()}: complete names {u.get('messageId')}, streamed {run.message_id}")

    def _on_cancelled(self, at: int, run: Run, u: dict[str, Any]) -> None:
        self._terminal(at, run, u)
        if u.get("messageId") != run.message_id:
            self._fail(at, f"{run.describe()}: cancelled names {u.get('messageId')!r}, streamed row "
                           f"{run.message_id!r} (the partial reply's id iff text was sent)")

    def _on_error(self, at: int, run: Run, u: dict[str, Any]) -> None:
        self._terminal(at, run, u)
        if u.get("errorType") not in ERROR_TYPES or not isinstance(u.get("retryable"), bool) or not u.get("error"):
            self._fail(at, f"{run.describe()}: error without errorType/retryable/error")

    def _on_skipped(self, at: int, run: Run, u: dict[str, Any]) -> None:
        self._terminal(at, run, u)
        if run.run_id is None:
            self._fail(at, f"{run.describe()}: skipped outside an auto run")
        if run.message_id is not None:
            self._fail(at, f"{run.describe()}: skipped after streaming {run.text[:40]!r} (a SKIP is never shown)")
        if not u.get("messageId"):
            self._fail(at, f"{run.describe()}: skipped without the messageId of its system row")

    # --- all:complete ---------------------------------------------------------------------------------------------

    def _all_complete(self, at: int, params: dict[str, Any]) -> None:
        um = params["userMessageId"]
        self.counts["all:complete checked"] += 1
        self.all_complete.setdefault(um, []).append(at)
        self.turn_conversation.setdefault(um, params["conversationId"])
        for run in self.turn_runs.get(um, []):
            if run.running:
                self._fail(at, f"all:complete for turn {um[-6:]} while {run.describe()} is still running")
        for auto in self.auto_runs.values():
            if auto.um == um and auto.running and auto.speakers:
                self._fail(at, f"all:complete for turn {um[-6:]} while {auto.describe()} goes on (one, when it stops)")

    # --- auto:state -----------------------------------------------------------------------------------------------

    def _auto_state(self, at: int, params: dict[str, Any]) -> None:
        self.counts["auto:state checked"] += 1
        run_id, state, conversation = params.get("runId"), params.get("state"), params.get("conversationId")
        auto = self.auto_runs.get(run_id) if isinstance(run_id, str) else None
        if state == "running":
            if auto is not None or not isinstance(run_id, str) or not isinstance(conversation, str):
                self._fail(at, f"auto run {run_id} started twice (or without runId/conversationId)")
                return
            if params.get("replies") != 0:
                self._fail(at, f"auto run {run_id[-6:]} started with replies {params.get('replies')!r}, not 0")
            for other in self.auto_runs.values():
                if other.conversation_id == conversation and other.running:
                    self._fail(at, f"auto run {run_id[-6:]} started while {other.describe()} had not stopped")
            self.auto_runs[run_id] = AutoRun(run_id, conversation, at)
            self.counts["auto runs started"] += 1
        elif state == "stopped":
            if auto is None or not auto.running:
                self._fail(at, f"auto run {str(run_id)[-6:]} stopped, but it was not running")
                return
            auto.stopped_at, auto.reason, auto.replies = at, params.get("reason"), params.get("replies")
            self.counts[f"auto runs stopped: {auto.reason}"] += 1
            for speaker in auto.speakers:
                if speaker.running:
                    self._fail(at, f"{auto.describe()} stopped while {speaker.describe()} still runs")
            if auto.replies != auto.completed():
                self._fail(at, f"{auto.describe()} stopped with replies {auto.replies!r}, but {auto.completed()} "
                               "of its speaker turns completed")
            problem = self._unexplained_stop(auto)
            if problem:
                self._fail(at, f"{auto.describe()} stopped as {auto.reason!r}, but {problem}")
        else:
            self._fail(at, f"auto:state with state {state!r}")

    def _unexplained_stop(self, auto: AutoRun) -> str | None:
        """What makes this stop reason impossible given the frames and requests so far (None: it is explained)."""
        ended = sorted((s for s in auto.speakers if s.ended_at is not None), key=lambda s: s.ended_at or 0)
        reason = auto.reason
        if reason not in STOP_REASONS:
            return "that is not one of the contract's stop reasons"
        if reason == "all_skipped" and (not ended or ended[-1].status != "skipped"):
            return "its last speaker turn did not skip"
        if reason == "error" and not any(s.status == "error" for s in ended):
            return "none of its speaker turns failed"
        if reason == "max_messages" and not auto.completed():
            return "no reply completed"
        if reason == "shutdown" and not (self._shutdown_sent or self._sigterm_sent):
            return "neither shutdown nor SIGTERM was sent"
        if reason == "user_message" and not any(
            r.method == "processUserMessage" and r.params.get("conversationId") == auto.conversation_id
            for r in self.order
        ):
            return "no message was sent to its conversation"
        if reason == "cancelled" and not (self._request_cancelled or any(r.method in CANCELLING for r in self.order)):
            return "nothing that cancels was sent"
        return None

    # --- responses ------------------------------------------------------------------------------------------------

    def _response(self, at: int, frame: dict[str, Any]) -> None:
        request = self.requests.get(request_key(frame.get("id")))
        if request is None:
            self._fail(at, f"a response to an id never sent: {str(frame)[:200]}")
            return
        if request.response is not None:
            self._fail(at, f"{request.method} #{request.id} answered twice")
            return
        if at < request.sent_at:
            self._fail(at, f"{request.method} #{request.id} answered before it was sent")
        request.response, request.answered_at = frame, at
        self.counts["responses checked"] += 1
        self._settings_seen(at, request, frame.get("result"))
        if "error" in frame:
            self._error(at, request, frame["error"])
            return
        if self._validate_result is not None:
            try:
                self._validate_result(request.method, frame["result"])
            except Exception as exc:
                self._fail(at, f"{request.method} #{request.id}: the result breaks the schema: {str(exc)[:300]}")
                return
        if request.after_shutdown:
            self._fail(at, f"{request.method} #{request.id} sent after shutdown got a result, not -32014")
        elif request.method in RUN_METHODS:
            self._turn_result(at, request, frame["result"])
        elif request.method == "chat:retryAgent":
            self._retry_result(at, request, frame["result"])

    def _settings_seen(self, at: int, request: Request, result: Any) -> None:
        """What an answer tells about conversations' modes: an update's row (or its failure), a row read."""
        if request.method == "conversations:update":
            sighting = self._settings_sent.pop(request_key(request.id), None)
            if sighting is not None:
                row = result if isinstance(result, dict) else None
                self.settings.update_answered(request.params["id"], sighting, at, row)
        elif request.method in ("conversations:create", "conversations:get") and isinstance(result, dict):
            self.settings.row_read(request.sent_at, at, result)
        elif request.method == "conversations:list" and isinstance(result, list):
            for row in result:
                self.settings.row_read(request.sent_at, at, row)

    def _modes(self, conversation_id: str, since: int, until: int) -> set[str] | None:
        possible = self.settings.possible(conversation_id, since, until)
        return None if possible is None else {s.mode for s in possible}

    def _other_turn_in_flight(self, request: Request, at: int) -> bool:
        """Another turn of the request's conversation was, or may have been, running between its write and `at`."""
        conversation = request.params.get("conversationId")
        return any(
            other is not request and other.method in TURN_METHODS and other.params.get("conversationId") == conversation
            and other.sent_at <= at and (other.answered_at is None or other.answered_at >= request.sent_at)
            for other in self.order
        )

    def _error(self, at: int, request: Request, error: dict[str, Any]) -> None:
        kind = error_kind(error)
        self.counts[f"answers: {request.method} → {kind}"] += 1
        if request.after_shutdown:
            if kind != "shutting_down":
                self._fail(at, f"{request.method} #{request.id} sent after shutdown: {kind}, not shutting_down")
            return
        allowed = set(ALLOWED_ERRORS.get(request.method, frozenset({"shutting_down"})))
        if not request.cancel_sent:
            allowed.discard("cancelled")
        if request.method == "processUserMessage":
            if request.params.get("onBusy") != "reject":
                allowed.discard("busy")
            if not self._sigterm_sent:
                # A turn read before shutdown still answers with its result. SIGTERM comes out of band: a request
                # written before it may be read after it.
                allowed.discard("shutting_down")
        if request.method in RUN_METHODS and not self._other_turn_in_flight(request, at):
            allowed.discard("busy")  # busy means another turn runs
        if request.method == "chat:startAuto" and self._modes(request.params["conversationId"], request.sent_at,
                                                              at) == {"auto"}:
            allowed.discard("validation")  # refused as "not in auto mode" while it certainly was
        if kind not in allowed:
            self._fail(at, f"{request.method} #{request.id} {json.dumps(request.params)[:160]} → {error}")

    def _turn_result(self, at: int, request: Request, result: dict[str, Any]) -> None:
        """A `processUserMessage` or `chat:startAuto` result: a plain turn's, or an auto run's (with `auto`)."""
        um = result["userMessageId"]
        what = f"{request.method} #{request.id}"
        self.counts["turn results checked"] += 1
        self.turn_conversation.setdefault(um, request.params["conversationId"])
        if not any(p < at for p in self.all_complete.get(um, [])):
            self._fail(at, f"{what} answered before its all:complete (turn {um[-6:]})")
        results = result["agentResults"]
        statuses = Counter(r["status"] for r in results)
        expected = (len(results), statuses["complete"], statuses["error"], statuses["cancelled"])
        got = (result["totalAgents"], result["successfulAgents"], result["failedAgents"], result["cancelledAgents"])
        if got != expected:
            self._fail(at, f"{what}: totals {got} disagree with agentResults {expected}")
        if "auto" in result:
            self._auto_result(at, request, result)
        elif request.method == "chat:startAuto":
            self._fail(at, f"{what} answered without `auto`: it always starts an auto run")
        else:
            self._plain_result(at, request, result)
        self._started_alone(at, request, um)

    def _plain_result(self, at: int, request: Request, result: dict[str, Any]) -> None:
        um, results, what = result["userMessageId"], result["agentResults"], f"{request.method} #{request.id}"
        for agent_result in results:
            self._matches_a_run(at, what, agent_result, um, 0)
        reported = {r["conversationAgentId"] for r in results}
        own = [run for run in self.turn_runs.get(um, []) if run.started_at < at and not run.maybe_retry]
        for run in own:
            if run.ca not in reported:
                self._fail(at, f"{what}: {run.describe()} ran but is not in agentResults")
        modes = self._modes(request.params["conversationId"], request.sent_at, at)
        if modes is not None and len(modes) == 1:
            self.counts[f"plain turns checked in a {next(iter(modes))} conversation"] += 1
        if modes == {"auto"} and results:
            self._fail(at, f"{what}: a conversation in auto mode answered with a plain turn of {len(results)} agents")
        if modes == {"round-robin"} and (len(results) > 1 or len(own) > 1):
            self._fail(at, f"{what}: a round-robin turn ran {max(len(results), len(own))} agents (one per message)")

    def _auto_result(self, at: int, request: Request, result: dict[str, Any]) -> None:
        """The result agrees with the run's frames: its stop, its replies, its rounds, one agentResult per speaker turn,
        one all:complete when it stopped; and the run kept to its settings."""
        summary, um, what = result["auto"], result["userMessageId"], f"{request.method} #{request.id}"
        self.counts["auto results checked"] += 1
        auto = self.auto_runs.get(summary["runId"])
        if auto is None or auto.stopped_at is None or auto.stopped_at > at:
            self._fail(at, f"{what}: answered for auto run {summary['runId']} before its auto:state stopped")
            return
        auto.request = request
        if auto.um is None:
            auto.um = um
        elif auto.um != um:
            self._fail(at, f"{what}: userMessageId {um}, but its speaker turns named {auto.um}")
        if (summary["stopReason"], summary["replies"]) != (auto.reason, auto.replies):
            self._fail(at, f"{what}: auto {summary}, but auto:state stopped said {auto.reason!r} after {auto.replies}")
        rounds = max((s.round for s in auto.speakers if isinstance(s.round, int)), default=1)
        if not rounds <= summary["rounds"] <= rounds + 1:
            self._fail(at, f"{what}: {summary['rounds']} rounds, but its speaker turns reached round {rounds}")
        reported = Counter((r["conversationAgentId"], r["status"], r.get("messageId") if r["status"] == "complete"
                            else None) for r in result["agentResults"])
        streamed = Counter(s.outcome() for s in auto.speakers)
        if reported != streamed:
            self._fail(at, f"{what}: agentResults {sorted(reported.elements(), key=str)} disagree with its speaker "
                           f"turns {sorted(streamed.elements(), key=str)}")
        sent = self.all_complete.get(um, [])
        when_stopped = [p for p in sent if auto.stopped_at < p < at]
        meanwhile = [p for p in sent if auto.speakers and auto.speakers[0].started_at < p < auto.stopped_at]
        if len(when_stopped) != 1 or meanwhile:
            self._fail(at, f"{what}: all:complete sent {len(when_stopped)} times when {auto.describe()} stopped and "
                           f"{len(meanwhile)} while it went on (once, when it stops)")
        self._kept_its_settings(at, request, auto)
        self._interrupted_by_a_message(at, request, auto)
        self._silent_after_a_switch(at, request, auto)

    def _kept_its_settings(self, at: int, request: Request, auto: AutoRun) -> None:
        """`maxMessages`, the stop at an error, and the style, for whichever settings the run may have read."""
        possible = self.settings.possible(auto.conversation_id, request.sent_at, auto.started_at)
        if possible is None:
            return
        settings = [s for s in possible if s.mode == "auto"]
        what = f"{request.method} #{request.id}: {auto.describe()}"
        if not settings:
            self._fail(at, f"{what} ran in a conversation whose mode was {sorted({s.mode for s in possible})}")
            return
        most, least = max(s.max_messages for s in settings), min(s.max_messages for s in settings)
        styles = {s.style for s in settings}
        if auto.completed() > most:
            self._fail(at, f"{what}: {auto.completed()} replies, more than maxMessages {most}",
                       "rounds-overshoot" if "rounds" in styles else None)
        if auto.reason == "max_messages" and auto.completed() < least:
            self._fail(at, f"{what}: stopped at max_messages after {auto.completed()} replies (maxMessages {least})")
        ordered = sorted(auto.speakers, key=lambda s: s.started_at)
        if styles == {"sequential"}:
            for first, second in zip(ordered, ordered[1:], strict=False):
                if first.ended_at is None or first.ended_at > second.started_at:
                    self._fail(at, f"{what}: {second.agent_name} started before {first.agent_name} ended "
                                   "(sequential: one speaker at a time)")
        if styles == {"rounds"}:
            twice = [key for key, n in Counter((s.round, s.agent_name) for s in auto.speakers).items() if n > 1]
            if twice:
                self._fail(at, f"{what}: {twice[0][1]} spoke twice in round {twice[0][0]} (rounds: once per round)")
        # The run stops at a failed speaker turn, and at its last allowed reply: nothing starts after (in rounds
        # style: no later round; its own round's speaker turns started together).
        enders = [s for s in ordered if s.status == "error"]
        completed = 0
        for speaker in sorted((s for s in ordered if s.ended_at is not None), key=lambda s: s.ended_at or 0):
            completed += speaker.status == "complete"
            if completed >= most:
                enders.append(speaker)
                break
        for ender in enders:
            for later in ordered:
                after = later.started_at > (ender.ended_at or 0)
                if after and (styles == {"sequential"} or _round_after(later, ender)):
                    self._fail(at, f"{what}: {later.agent_name} spoke after {ender.describe()} ended the run",
                               "rounds-overshoot" if "rounds" in styles and ender.status == "complete" else None)
                    return

    def _interrupted_by_a_message(self, at: int, request: Request, auto: AutoRun) -> None:
        """`user_message`: another message (not `onBusy: "reject"`) was sent to the conversation while the run's
        request was in flight (it may interrupt the run before it starts, and even answer before it starts, as
        -32800 when that message's own request is cancelled)."""
        if auto.reason != "user_message":
            return
        if not any(
            other is not request and other.method == "processUserMessage" and other.params.get("onBusy") != "reject"
            and other.params.get("conversationId") == auto.conversation_id and other.sent_at <= (auto.stopped_at or 0)
            and (other.answered_at is None or other.answered_at >= request.sent_at)
            for other in self.order
        ):
            self._fail(at, f"{request.method} #{request.id}: {auto.describe()} stopped as user_message, but no other "
                           "message was sent while it ran")

    def _silent_after_a_switch(self, at: int, request: Request, auto: AutoRun) -> None:
        """Once a switch of its conversation away from `auto` has answered, the run says nothing more: a switch stops
        a running auto run first (unless the mode was switched back to `auto` before the run started)."""
        for switch in self.order:
            row = (switch.response or {}).get("result")
            if (switch.method != "conversations:update" or switch.params.get("id") != auto.conversation_id
                    or not isinstance(row, dict) or row.get("chatMode") == "auto" or switch.answered_at is None
                    or request.sent_at >= switch.answered_at):
                continue
            if any(back.method == "conversations:update" and back.params.get("id") == auto.conversation_id
                   and back.params.get("chatMode") == "auto" and switch.sent_at < back.sent_at <= auto.started_at
                   for back in self.order):
                continue
            if auto.started_at < switch.answered_at < (auto.stopped_at or 0):
                self.counts["auto runs a switch away from auto landed in"] += 1
            late = [s for s in auto.speakers if s.last_text_at is not None and s.last_text_at > switch.answered_at]
            if late:
                # The known bug: a run that started after the switch was written (it had read the mode just before).
                known = "stale-mode" if auto.started_at >= switch.sent_at else None
                self._fail(at, f"{request.method} #{request.id}: {late[0].describe()} still spoke after "
                               f"conversations:update #{switch.id} switched the mode to {row.get('chatMode')} "
                               "(switching the mode stops a running auto run first)", known)
                return

    def _started_alone(self, at: int, request: Request, um: str) -> None:
        """When this turn's first agent started, no other turn of its conversation was running: `onBusy`
        interrupt cancels the running turn, then starts. A retry written after this turn's request is not such a
        turn (retries do not wait for turns), so it may overlap."""
        own = [r.started_at for r in self.turn_runs.get(um, []) if not r.maybe_retry]
        if not own:
            return
        first = min(own)
        for other in self.turn_runs_of(request.params["conversationId"]):
            overlapping = other.started_at < first and (other.ended_at is None or other.ended_at > first)
            if other.um != um and overlapping and not (other.maybe_retry and other.started_at >= request.sent_at):
                self._fail(at, f"{request.method} #{request.id}: turn {um[-6:]} started while {other.describe()} "
                               "was still running (an interrupting turn starts after the running one is cancelled)")

    def _retry_result(self, at: int, request: Request, result: dict[str, Any]) -> None:
        self.counts["retry results checked"] += 1
        self._matches_a_run(at, f"chat:retryAgent #{request.id}", result, request.params["userMessageId"],
                            request.sent_at)

    def _matches_a_run(self, at: int, what: str, agent_result: dict[str, Any], um: str, started_after: int) -> None:
        runs = [r for r in self.runs.get((agent_result["conversationAgentId"], um), [])
                if r.started_at >= started_after and r.ended_at is not None and r.ended_at < at]
        status = agent_result["status"]
        if not any(r.status == status for r in runs):
            self._fail(at, f"{what}: {agent_result['agentName']} {status}, but its terminal updates were "
                           f"{[r.status for r in runs]} (each agent of a result gets its one terminal update first)")
        if status == "complete" and not any(r.terminal and r.terminal.get("messageId") == agent_result.get("messageId")
                                            for r in runs):
            self._fail(at, f"{what}: {agent_result['agentName']}'s messageId differs from its complete update")

    # --- when the session is quiet --------------------------------------------------------------------------------

    def unanswered(self) -> list[Request]:
        return [r for r in self.order if r.response is None]

    def running(self) -> list[Run]:
        return [r for runs in self.runs.values() for r in runs if r.running]

    def check_settled(self) -> None:
        """Every request answered, every run ended, every auto run stopped, and every turn's last run (every auto
        run's stop) followed by an all:complete."""
        for request in self.unanswered():
            self._fail(self.position, f"{request.method} #{request.id} {json.dumps(request.params)[:160]} never "
                                      "answered")
        for run in self.running():
            self._fail(self.position, f"{run.describe()} never got its terminal update")
        for auto in self.unstopped():
            self._fail(self.position, f"{auto.describe()} never sent auto:state stopped")
        for um, runs in self.turn_runs.items():
            last_end = max((r.ended_at for r in runs if r.ended_at is not None), default=None)
            if last_end is not None and not any(p > last_end for p in self.all_complete.get(um, [])):
                self._fail(self.position, f"turn {um[-6:]}: no all:complete after its last agent settled "
                                          f"({'; '.join(r.describe() for r in runs)})")
        for auto in self.auto_runs.values():
            stopped_at, sent = auto.stopped_at, self.all_complete.get(auto.um or "", [])
            if auto.um and stopped_at is not None and not any(p > stopped_at for p in sent):
                self._fail(self.position, f"{auto.describe()}: no all:complete after it stopped")

    def unstopped(self) -> list[AutoRun]:
        return [auto for auto in self.auto_runs.values() if auto.running]

    def settled_runs(self) -> list[Run]:
        return [r for runs in self.runs.values() for r in runs if not r.running]

    def check_replies(
        self, rows: dict[str, dict[str, Any]], may_be_gone: Callable[[Run], bool],
        deleted: Callable[[str], bool] = lambda message_id: False,
    ) -> None:
        """The streamed text of every settled run equals its saved row (status, agent and trigger too; once the
        trigger is `deleted` the contract leaves `replyToId` open: the old id or null). A speaker turn's reply answers
        the latest message when it started: no older than any reply completed before then, nor than the message
        that started its run; a skip left its notice."""
        for run in self.settled_runs():
            if run.status == "skipped":
                self._skip_notice(run, rows, may_be_gone)
            if run.message_id is None:
                continue
            row = rows.get(run.message_id)
            if row is None:
                if not may_be_gone(run):
                    self._fail(self.position, f"{run.describe()}: its reply row {run.message_id} is gone")
                continue
            self.counts["replies compared with their rows"] += 1
            reply_to = row["replyToId"]
            if run.run_id is not None:
                self._answers_the_latest(run, reply_to, may_be_gone, deleted)
                reply_to = run.um  # not the run's trigger: checked just above
            elif reply_to is None and deleted(run.um):
                reply_to = run.um
            expected = (run.text, ROW_STATUS.get(run.status or ""), run.ca, run.um)
            got = (row["content"], row["status"], row["conversationAgentId"], reply_to)
            if got != expected:
                self._fail(self.position, f"{run.describe()}: row (content, status, agent, replyTo) is "
                                          f"{_short(got)}, the updates say {_short(expected)}")

    def _answers_the_latest(self, run: Run, reply_to: str | None, may_be_gone: Callable[[Run], bool],
                            deleted: Callable[[str], bool]) -> None:
        """Ids are time-ordered (UUIDv7), so "the latest message when it started" is no older than each reply of
        its conversation that completed before it started, and than a message that started its run."""
        if reply_to is None:  # what it answered was deleted
            return
        floor = [r.message_id for r in self.settled_runs() if r.conversation_id == run.conversation_id
                 and r.status == "complete" and r.message_id and (r.ended_at or 0) < run.started_at
                 and (r.run_id, r.round) != (run.run_id, run.round)  # a round's speakers share one history
                 and not may_be_gone(r) and not deleted(r.message_id)]
        auto = self.auto_runs.get(run.run_id or "")
        if auto and auto.request and auto.request.method == "processUserMessage" and not deleted(run.um):
            floor.append(run.um)
        if floor and reply_to < max(floor):
            self._fail(self.position, f"{run.describe()}: its reply answers {reply_to}, older than {max(floor)}, "
                                      "which was there when it started (a speaker answers the latest message)")

    def _skip_notice(self, run: Run, rows: dict[str, dict[str, Any]], may_be_gone: Callable[[Run], bool]) -> None:
        notice_id = (run.terminal or {}).get("messageId")
        row = rows.get(notice_id or "")
        if row is None:
            if not may_be_gone(run):
                self._fail(self.position, f"{run.describe()}: its skip notice {notice_id} is gone")
            return
        self.counts["skip notices compared with their rows"] += 1
        expected = ("system", SKIP_NOTICE.format(name=run.agent_name), "complete")
        if (row["role"], row["content"], row["status"]) != expected:
            self._fail(self.position, f"{run.describe()}: its skip notice is {row['role']} {row['content']!r}")


def _round_after(later: Run, earlier: Run) -> bool:
    return isinstance(later.round, int) and isinstance(earlier.round, int) and later.round > earlier.round


def _short(values: tuple[Any, ...]) -> str:
    return repr(tuple(v[:60] + "…" if isinstance(v, str) and len(v) > 60 else v for v in values))
