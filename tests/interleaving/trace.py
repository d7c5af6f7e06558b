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
Checked when the session is quiet (`check_settled`): every request answered, every run ended, and the end of a
turn's last run followed by an `all:complete`. `check_replies` compares the streamed text of every settled run with
the saved row.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TERMINAL = frozenset({"complete", "error", "cancelled", "skipped"})
STATUSES = TERMINAL | {"thinking", "queued", "retrying", "streaming"}
ERROR_TYPES = frozenset(
    {"auth", "rate_limit", "validation", "context_length", "configuration", "timeout", "provider", "network", "unknown"}
)
ROW_STATUS = {"complete": "complete", "cancelled": "cancelled", "error": "error"}  # terminal → its reply's row
TURN_METHODS = frozenset({"processUserMessage", "chat:retryAgent"})

# What each method may legitimately answer instead of a result (error kinds; "cancelled" is -32800).
ALLOWED_ERRORS: dict[str, frozenset[str]] = {
    "processUserMessage": frozenset({"not_found", "busy", "shutting_down", "cancelled"}),
    "chat:retryAgent": frozenset({"not_found", "conflict", "busy", "shutting_down", "cancelled"}),
    "chat:cancel": frozenset({"not_found", "shutting_down"}),
    "conversationAgents:add": frozenset({"not_found", "conflict", "shutting_down"}),
    "conversationAgents:remove": frozenset({"not_found", "shutting_down"}),
    "conversationAgents:update": frozenset({"not_found", "shutting_down"}),
    "conversationAgents:list": frozenset({"not_found", "shutting_down"}),
    "conversations:delete": frozenset({"not_found", "shutting_down"}),
    "messages:create": frozenset({"not_found", "shutting_down"}),
    "messages:delete": frozenset({"not_found", "shutting_down"}),
    "messages:list": frozenset({"not_found", "shutting_down"}),
}
_KIND_OF_CODE = {-32010: "not_found", -32011: "conflict", -32800: "cancelled"}


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

    @property
    def running(self) -> bool:
        return self.terminal is None

    @property
    def status(self) -> str | None:
        return self.terminal["status"] if self.terminal else None

    def describe(self) -> str:
        return f"{self.agent_name} in turn {self.um[-6:]} ({' '.join(u['status'] for u in self.updates)})"


class TraceChecker:
    """`validate_result(method, result)` (the schema check) raises for a result that breaks the schema."""

    def __init__(self, validate_result: Callable[[str, Any], None] | None = None) -> None:
        self._validate_result = validate_result
        self.requests: dict[str, Request] = {}
        self.order: list[Request] = []
        self.runs: dict[tuple[str, str], list[Run]] = {}
        self.turn_runs: dict[str, list[Run]] = {}  # userMessageId → runs
        self.turn_conversation: dict[str, str] = {}
        self.all_complete: dict[str, list[int]] = {}
        self.retries_sent: dict[tuple[str, str], int] = {}  # (ca, um) → trace position of the first retry sent
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
        return request

    def cancel_requested(self, request_id: Any) -> None:
        request = self.requests.get(request_key(request_id))
        if request is not None:
            request.cancel_sent = True

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

    def _fail(self, at: int, what: str) -> None:
        self.violations.append(f"[frame {at}] {what}")

    def _notification(self, at: int, frame: dict[str, Any]) -> None:
        params = frame.get("params") or {}
        if frame["method"] == "agent:update":
            self._update(at, params)
        elif frame["method"] == "all:complete":
            self._all_complete(at, params)
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
        current.updates.append(u)
        getattr(self, "_on_" + status)(at, current, u)

    def _start_run(self, at: int, u: dict[str, Any], key: tuple[str, str], current: Run | None) -> None:
        if u["status"] != "thinking":
            self._fail(at, f"{u['agentName']}'s seq 1 is {u['status']}, not thinking")
        if current is not None and current.running:
            self._fail(at, f"{current.describe()}: a new run started (seq 1) before its terminal update")
        conversation, um = u["conversationId"], u["userMessageId"]
        maybe_retry = key in self.retries_sent and self.retries_sent[key] <= at
        run = Run(conversation, key[0], um, u["agentName"], at, maybe_retry, [u])
        self.runs[key].append(run)
        self.turn_runs.setdefault(um, []).append(run)
        self.turn_conversation[um] = conversation
        self.counts["runs started"] += 1

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

    def _terminal(self, at: int, run: Run, u: dict[str, Any]) -> None:
        run.terminal, run.ended_at = u, at
        self.counts["terminal updates checked"] += 1
        self.counts[f"terminal updates: {u['status']}"] += 1

    def _on_complete(self, at: int, run: Run, u: dict[str, Any]) -> None:
        self._terminal(at, run, u)
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
        self._fail(at, f"{run.describe()}: skipped outside an auto run")

    # --- all:complete ---------------------------------------------------------------------------------------------

    def _all_complete(self, at: int, params: dict[str, Any]) -> None:
        um = params["userMessageId"]
        self.counts["all:complete checked"] += 1
        self.all_complete.setdefault(um, []).append(at)
        self.turn_conversation.setdefault(um, params["conversationId"])
        for run in self.turn_runs.get(um, []):
            if run.running:
                self._fail(at, f"all:complete for turn {um[-6:]} while {run.describe()} is still running")

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
        elif request.method == "processUserMessage":
            self._turn_result(at, request, frame["result"])
        elif request.method == "chat:retryAgent":
            self._retry_result(at, request, frame["result"])

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
        if kind not in allowed:
            self._fail(at, f"{request.method} #{request.id} {json.dumps(request.params)[:160]} → {error}")

    def _turn_result(self, at: int, request: Request, result: dict[str, Any]) -> None:
        um = result["userMessageId"]
        self.counts["turn results checked"] += 1
        self.turn_conversation.setdefault(um, request.params["conversationId"])
        if not any(p < at for p in self.all_complete.get(um, [])):
            self._fail(at, f"processUserMessage #{request.id} answered before its all:complete (turn {um[-6:]})")
        results = result["agentResults"]
        statuses = Counter(r["status"] for r in results)
        expected = (len(results), statuses["complete"], statuses["error"], statuses["cancelled"])
        got = (result["totalAgents"], result["successfulAgents"], result["failedAgents"], result["cancelledAgents"])
        if got != expected:
            self._fail(at, f"processUserMessage #{request.id}: totals {got} disagree with agentResults {expected}")
        for agent_result in results:
            self._matches_a_run(at, f"processUserMessage #{request.id}", agent_result, um, 0)
        reported = {r["conversationAgentId"] for r in results}
        for run in self.turn_runs.get(um, []):
            if run.started_at < at and not run.maybe_retry and run.ca not in reported:
                self._fail(at, f"processUserMessage #{request.id}: {run.describe()} ran but is not in agentResults")
        self._started_alone(at, request, um)

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
                self._fail(at, f"processUserMessage #{request.id}: turn {um[-6:]} started while {other.describe()} "
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
        """Every request answered, every run ended, and every turn's last run followed by an all:complete."""
        for request in self.unanswered():
            self._fail(self.position, f"{request.method} #{request.id} {json.dumps(request.params)[:160]} never "
                                      "answered")
        for run in self.running():
            self._fail(self.position, f"{run.describe()} never got its terminal update")
        for um, runs in self.turn_runs.items():
            last_end = max((r.ended_at for r in runs if r.ended_at is not None), default=None)
            if last_end is not None and not any(p > last_end for p in self.all_complete.get(um, [])):
                self._fail(self.position, f"turn {um[-6:]}: no all:complete after its last agent settled "
                                          f"({'; '.join(r.describe() for r in runs)})")

    def settled_runs(self) -> list[Run]:
        return [r for runs in self.runs.values() for r in runs if not r.running]

    def check_replies(
        self, rows: dict[str, dict[str, Any]], may_be_gone: Callable[[Run], bool],
        trigger_deleted: Callable[[str], bool] = lambda um: False,
    ) -> None:
        """The streamed text of every settled run equals its saved row (status, agent and trigger too; once the
        trigger is deleted the contract leaves `replyToId` open: the old id or null)."""
        for run in self.settled_runs():
            if run.message_id is None:
                continue
            row = rows.get(run.message_id)
            if row is None:
                if not may_be_gone(run):
                    self._fail(self.position, f"{run.describe()}: its reply row {run.message_id} is gone")
                continue
            self.counts["replies compared with their rows"] += 1
            expected = (run.text, ROW_STATUS.get(run.status or ""), run.ca, run.um)
            reply_to = run.um if row["replyToId"] is None and trigger_deleted(run.um) else row["replyToId"]
            got = (row["content"], row["status"], row["conversationAgentId"], reply_to)
            if got != expected:
                self._fail(self.position, f"{run.describe()}: row (content, status, agent, replyTo) is "
                                          f"{_short(got)}, the updates say {_short(expected)}")


def _short(values: tuple[Any, ...]) -> str:
    return repr(tuple(v[:60] + "…" if isinstance(v, str) and len(v) > 60 else v for v in values))
