"""Model-based tests: a user acting at any point of running turns, against the real sidecar over stdio.

A hypothesis `RuleBasedStateMachine` whose one rule draws the user's next action (weighted): send a message
(`onBusy` interrupt or reject), cancel one agent or all, `$/cancelRequest` a running turn, retry an agent, remove,
disable or add an agent, delete the trigger, a reply being written or the whole conversation, limit an llm config's
concurrency, switch a conversation's mode (manual, round-robin, auto with small `autoSettings`; CONTRACT §5, §5b),
start an auto run with `chat:startAuto`, stop reading stdout, and end the process every way a desktop app can
(shutdown + exit, stdin EOF, SIGTERM, even while stdout is not read, kill -9) then start it again on the same data
dir. Conversations start in any mode, so most of these also land in the middle of auto runs. Requests are pipelined:
an action goes in the same write as the `processUserMessage` it races, right after it, or once the sidecar reports
a chosen stage (an agent thinking, streaming, retrying, failing, or the turn answered). Nothing here sleeps: every
wait is on what the sidecar writes.

The invariants are the contract's promises (see tests/interleaving/trace.py for the per-frame ones), checked after
every step; when the session is quiet, and after every restart, the saved rows are compared with what was streamed.
"""

from __future__ import annotations

import functools
import itertools
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from sidecar.validation import validate_result
from tests.fake_provider import FakeProvider
from tests.interleaving import cast, counts
from tests.interleaving.conftest import profile_name, profile_seed, profile_settings, tolerated_bugs
from tests.interleaving.driver import EXIT_WITHIN_SECONDS, Driver, rows_in_database
from tests.interleaving.trace import TURN_METHODS, Request, Run, TraceChecker

FRAMINGS = ("ndjson", "lsp")
MEMBERS = st.lists(st.sampled_from(cast.WEIGHTED_NAMES), min_size=1, max_size=4, unique=True)
PAUSED_STEPS_MAX = 6  # sends while stdout is not read stay far below the 64 KiB stdin pipe
CHOICE = st.integers(min_value=0, max_value=2**16)  # picks among what exists when the step runs (index modulo)
FORMS = ("content", "userMessageId")
ON_BUSY = (None, "interrupt", "reject")
STAGES = ("same write", "next step", "thinking", "streaming", "retrying", "error", "answered", "answered")
ACTIONS = (
    "nothing", "nothing", "nothing",  # three times: plenty of turns must run to their end undisturbed
    "cancel all", "cancel one", "cancel request", "retry", "remove agent", "disable agent", "enable agent",
    "add agent", "delete trigger", "delete reply", "delete conversation", "send again", "send again (reject)",
    "limit concurrency", "switch mode", "start auto",
)
# A conversation's mode and autoSettings (maxMessages, style; delayMs stays 0): half of them manual, a third auto.
SETTINGS = st.tuples(st.sampled_from(("manual", "manual", "manual", "round-robin", "auto", "auto")),
                     st.integers(min_value=2, max_value=3), st.sampled_from(("sequential", "rounds")))
Settings = tuple[str, int, str]
ENDINGS = ("shutdown", "sigterm", "kill", "eof")
# What the user does at each step, weighted: mostly messages and actions; restarts are the slowest step.
KINDS = (*["send"] * 6, *["act"] * 4, "settle", "settle", "stop or resume reading", "new conversation",
         "end session")


@dataclass
class Conversation:
    id: str
    members: dict[str, str] = field(default_factory=dict)  # conversationAgentId → agent name
    enabled: dict[str, bool] = field(default_factory=dict)
    deleted: bool = False
    mode: str = "manual"  # as last asked for (the checker knows what it may really have been)


def _settings_params(settings: Settings) -> dict[str, Any]:
    mode, max_messages, style = settings
    return {"chatMode": mode, "autoSettings": {"maxMessages": max_messages, "style": style, "delayMs": 0}}


@dataclass
class Environment:
    fake: FakeProvider
    root: Path
    examples: itertools.count[int] = field(default_factory=itertools.count)


def _choose(options: list[Any] | tuple[Any, ...], choice: int) -> Any:
    """The option a drawn number picks (None when there is none): the draw never depends on what exists."""
    return options[choice % len(options)] if options else None


def _step(method: Callable[..., None]) -> Callable[..., None]:
    """Marks the machine unclean while a step runs: a step that raised leaves it so, and teardown only kills."""

    @functools.wraps(method)
    def wrapper(self: ChatMachine, *args: Any, **kwargs: Any) -> None:
        self.clean = False
        counts.add("steps")
        method(self, *args, **kwargs)
        self.clean = True

    return wrapper


class ChatMachine(RuleBasedStateMachine):
    def __init__(self, env: Environment) -> None:
        super().__init__()
        self.env = env
        self.clean = True
        self.driver: Driver | None = None
        self.checker = TraceChecker(validate_result, tolerated_bugs())
        self.log: list[str] = []
        self.session = 0
        self.sent = itertools.count(1)
        self.conversations: dict[str, Conversation] = {}
        self.configs: dict[str, str] = {}
        self.agents: dict[str, str] = {}
        self.paused_steps: int | None = None  # None while stdout is read
        self.drawn_settings: Settings = ("manual", 2, "sequential")  # this step's draw, for "switch mode"
        self.adds: list[Request] = []  # conversationAgents:add requests whose new member is not known yet
        # What outlives a session (all keyed by ids the sidecar made):
        self.acked_users: dict[str, str] = {}  # user message → conversation: acknowledged, must survive
        self.contents: dict[str, str] = {}  # user message → the content that created it
        self.unsaved: set[str] = set()  # contents of refused sends: never saved
        self.saved_replies: dict[str, Run] = {}  # reply row → its settled run, from earlier sessions
        self.cut_replies: dict[str, tuple[Run, bool]] = {}  # reply row → run cut by an ending (and was it kill -9)
        self.known_interrupted: set[str] = set()
        self.deleted_messages: set[str] = set()
        self.removed: set[str] = set()  # conversation agents removed
        self.deletes_answered: set[str] = set()  # conversations whose conversations:delete answered null
        self.retried: set[tuple[str, str]] = set()  # (conversationAgentId, userMessageId)

    # --- set-up --------------------------------------------------------------------------------------------------

    @initialize(framing=st.sampled_from(FRAMINGS), first=MEMBERS, second=MEMBERS, first_settings=SETTINGS,
                second_settings=SETTINGS)
    @_step
    def start(self, framing: str, first: list[str], second: list[str], first_settings: Settings,
              second_settings: Settings) -> None:
        self.data_dir = self.env.root / f"example-{next(self.env.examples)}"
        self.framing = framing
        self._spawn()
        self.configs = cast.create_configs(self._result_of, self.env.fake)
        self.agents = cast.create_agents(self._result_of, self.configs)
        for names, settings in ((first, first_settings), (second, second_settings)):
            self._create_conversation(names, settings)
        self._note(f"start ({framing}): {[(c.mode, c.members) for c in self.conversations.values()]}")
        counts.add("examples")

    def _spawn(self) -> None:
        self.session += 1
        self.driver = Driver(self.data_dir, framing=self.framing)
        self.checker = TraceChecker(validate_result, tolerated_bugs())
        self.paused_steps = None
        counts.add("sessions (processes started)")

    def _create_conversation(self, names: list[str], settings: Settings) -> None:
        row = self._result_of("conversations:create", {"title": f"room {len(self.conversations) + 1}",
                                                       **_settings_params(settings)})
        conversation = Conversation(row["id"], mode=row["chatMode"])
        self.conversations[row["id"]] = conversation
        for name in names:
            member = self._result_of("conversationAgents:add", {"conversationId": row["id"],
                                                                "agentId": self.agents[name]})
            conversation.members[member["id"]], conversation.enabled[member["id"]] = name, True

    # --- talking to the sidecar ------------------------------------------------------------------------------------

    def _message(self, method: str, params: dict[str, Any]) -> tuple[dict[str, Any], Request]:
        assert self.driver is not None
        request_id = self.driver.next_id()
        request = self.checker.register(request_id, method, params, self.driver.frames_so_far())
        return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}, request

    def _write(self, frames: list[dict[str, Any]]) -> None:
        assert self.driver is not None
        try:
            self.driver.write_together(frames)
        except (BrokenPipeError, ValueError) as exc:
            raise AssertionError(f"the sidecar is gone (exit code {self.driver.proc.poll()}): {exc}; "
                                 f"stderr: {self.driver.stderr_lines[-3:]}\n{self._story()}") from None

    def _sync(self) -> bool:
        """Feed the checker every frame read so far. Returns False, so it can lead an `or` in a wait condition."""
        assert self.driver is not None
        self.checker.feed(self.driver.trace)
        return False

    def _call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        frame, request = self._message(method, params or {})
        self._write([frame])
        self._wait(lambda: request.response is not None, f"the answer to {method}")
        assert request.response is not None
        return request.response

    def _result_of(self, method: str, params: dict[str, Any] | None = None) -> Any:
        response = self._call(method, params)
        assert "result" in response, f"{method} {params} → {response}\n{self._story()}"
        return response["result"]

    def _wait(self, condition: Callable[[], bool], what: str) -> None:
        assert self.driver is not None and self.paused_steps is None, "waiting needs a client that reads"
        try:
            self.driver.wait_until(lambda: self._sync() or condition(), what)
        except AssertionError as hang:
            pending = [f"{r.method} #{r.id}" for r in self.checker.unanswered()]
            running = [r.describe() for r in self.checker.running()]
            raise AssertionError(f"{hang}\nunanswered: {pending}\nrunning: {running}\nbroken promises: "
                                 f"{self.checker.violations[:10]}\n{self._story()}") from None

    # --- the user's actions ----------------------------------------------------------------------------------------

    def _live(self) -> list[Conversation]:
        return [c for c in self.conversations.values() if not c.deleted]

    @rule(kind=st.sampled_from(KINDS), room=CHOICE, form=st.sampled_from(FORMS), on_busy=st.sampled_from(ON_BUSY),
          when=st.sampled_from(STAGES), action=st.sampled_from(ACTIONS), choice=CHOICE, names=MEMBERS,
          how=st.sampled_from(ENDINGS), behind_a_turn=st.booleans(), settings=SETTINGS)
    @_step
    def user(self, kind: str, room: int, form: str, on_busy: str | None, when: str, action: str, choice: int,
             names: list[str], how: str, behind_a_turn: bool, settings: Settings) -> None:
        """One thing the user does. A single rule with weighted kinds rather than one rule per kind: hypothesis's
        swarm testing switches whole rules off per example, which here left examples that never send a message."""
        kind = self._feasible(kind)
        self.drawn_settings = settings  # for a "switch mode" action
        if kind == "send":
            self._send(room, form, on_busy, when, action, choice)
        elif kind == "act":
            self._act(room, action, choice)
        elif kind == "settle":
            self._settle_and_check()
        elif kind == "stop or resume reading":
            self._stop_or_resume_reading()
        elif kind == "new conversation":
            self._create_conversation(names, settings)
            self._note(f"new {settings[0]} conversation with {names}")
        else:
            self._end_session(how, behind_a_turn, room)

    def _feasible(self, kind: str) -> str:
        """The kind itself, or what a user would do instead: no conversation left → make one; stdout unread for
        long enough → read it again; three conversations already → send."""
        reading = self.paused_steps is None
        if kind in ("send", "act") and not self._live():
            return "new conversation" if reading else "stop or resume reading"
        if kind in ("send", "act") and not reading and self.paused_steps >= PAUSED_STEPS_MAX:
            return "stop or resume reading"
        if kind == "new conversation" and (len(self._live()) >= 3 or not reading):
            return "send" if self._live() else "stop or resume reading"
        return kind

    def _send(self, room: int, form: str, on_busy: str | None, when: str, action: str, choice: int) -> None:
        """A user message, and an action racing its turn: in the same write, in a later step, or at a stage.
        While stdout is not read nothing can be waited for: the message goes by content, the action right behind."""
        reading = self.paused_steps is None
        conversation = _choose(self._live(), room)
        form, when = (form, when) if reading else ("content", when if when in STAGES[:2] else "same write")
        params: dict[str, Any] = {"conversationId": conversation.id}
        content = f"m{next(self.sent)} from the user, please answer"
        if form == "userMessageId":
            created = self._call("messages:create", {"conversationId": conversation.id, "role": "user",
                                                     "content": content})
            if "result" not in created:
                return
            params["userMessageId"] = created["result"]["id"]
            self.acked_users[params["userMessageId"]], self.contents[params["userMessageId"]] = conversation.id, content
        else:
            params["content"] = content
        if on_busy is not None:
            params["onBusy"] = on_busy
        frame, turn = self._message("processUserMessage", params)
        counts.add(f"turns sent (onBusy {on_busy or 'default'}, by {form})")
        if when == "same write":
            action, frames = self._action(action, choice, conversation, turn)
            self._write([frame, *frames])
        else:
            self._write([frame])
            if when == "next step" or not self._stage_reachable(conversation, when):
                action, when = "nothing", "next step"
            elif when == "answered":
                self._wait(lambda: turn.response is not None, f"the answer to turn #{turn.id}")
                action, frames = self._action(action, choice, conversation, turn)
                self._write(frames)
            else:
                self._wait_for_stage(conversation, when, turn)
                action, frames = self._action(action, choice, conversation, turn)
                self._write(frames)
        self._note(f"send #{turn.id} to {conversation.id[-4:]} ({conversation.mode}, {form}, onBusy {on_busy}) + "
                   f"{action} at {when}")
        counts.add(f"actions: {action}")
        counts.add(f"actions landing: {when}")
        self._count_paused_step()

    def _act(self, room: int, action: str, choice: int) -> None:
        """An action at whatever point the running turns have reached."""
        conversation = _choose(self._live(), room)
        action, frames = self._action(action, choice, conversation, None)
        self._write(frames)
        self._note(f"act on {conversation.id[-4:]} ({conversation.mode}): {action}"
                   f"{f' to {self.drawn_settings}' if action == 'switch mode' else ''}")
        counts.add(f"actions: {action}")
        counts.add("actions landing: at a random point")
        self._count_paused_step()

    def _action(
        self, action: str, choice: int, conversation: Conversation, turn: Request | None
    ) -> tuple[str, list[Any]]:
        """The frames of this action (the model is updated as it is sent); one that has no target here (a retry
        before any turn is known, say) becomes `cancel all`."""
        frames = self._frames_for(action, choice, conversation, turn)
        if frames is None:
            action, frames = "cancel all", self._frames_for("cancel all", choice, conversation, turn)
        assert frames is not None
        return action, frames

    def _frames_for(self, action: str, choice: int, conversation: Conversation,
                    turn: Request | None) -> list[Any] | None:
        cid = conversation.id
        members = sorted(conversation.members)
        ca = _choose(members, choice)
        turn_id = turn.params.get("userMessageId") if turn else None
        if action == "nothing":
            return []
        if action == "cancel all":
            return [self._message("chat:cancel", {"conversationId": cid})[0]]
        if action == "cancel one" and ca:
            return [self._message("chat:cancel", {"conversationId": cid, "conversationAgentId": ca})[0]]
        if action == "cancel request":
            target = turn or _choose([r for r in self.checker.unanswered() if r.method in TURN_METHODS], choice)
            if target is None:
                return None
            self.checker.cancel_requested(target.id)
            return [{"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": target.id}}]
        if action == "retry" and ca:
            um = turn_id or _choose(self._turns_of(cid), choice // 7)
            if um is None:
                return None
            self.retried.add((ca, um))
            params = {"conversationId": cid, "conversationAgentId": ca, "userMessageId": um}
            return [self._message("chat:retryAgent", params)[0]]
        if action == "remove agent" and ca:
            del conversation.members[ca], conversation.enabled[ca]
            self.removed.add(ca)
            return [self._message("conversationAgents:remove", {"id": ca})[0]]
        if action in ("disable agent", "enable agent") and ca:
            conversation.enabled[ca] = action == "enable agent"
            return [self._message("conversationAgents:update", {"id": ca, "enabled": action == "enable agent"})[0]]
        if action == "add agent":
            agent_id = self.agents[_choose(cast.NAMES, choice)]
            frame, request = self._message("conversationAgents:add", {"conversationId": cid, "agentId": agent_id})
            self.adds.append(request)
            return [frame]
        if action == "delete trigger":
            um = turn_id or _choose(self._turns_of(cid), choice // 7)
            if um is None:
                return None
            self.deleted_messages.add(um)
            return [self._message("messages:delete", {"id": um})[0]]
        if action == "delete reply":
            message_id = _choose(sorted(r.message_id for r in self.checker.running()
                                        if r.conversation_id == cid and r.message_id), choice)
            if message_id is None:
                return None
            self.deleted_messages.add(message_id)
            return [self._message("messages:delete", {"id": message_id})[0]]
        if action == "delete conversation":
            conversation.deleted = True
            return [self._message("conversations:delete", {"id": cid})[0]]
        if action in ("send again", "send again (reject)"):
            params: dict[str, Any] = {"conversationId": cid, "content": f"m{next(self.sent)} from the user, again"}
            if action.endswith("(reject)"):
                params["onBusy"] = "reject"
            return [self._message("processUserMessage", params)[0]]
        if action == "limit concurrency":
            config_id, limit = self.configs[_choose(sorted(self.configs), choice)], _choose([1, 2, 8], choice // 5)
            return [self._message("llmConfigs:update", {"id": config_id, "maxConcurrency": limit})[0]]
        if action == "switch mode":  # while a run goes: it stops (cancelled) when the mode changes
            conversation.mode = self.drawn_settings[0]
            return [self._message("conversations:update", {"id": cid, **_settings_params(self.drawn_settings)})[0]]
        if action == "start auto":  # busy while a turn runs; refused as validation unless in auto mode
            return [self._message("chat:startAuto", {"conversationId": cid})[0]]
        return None

    def _turns_of(self, conversation_id: str) -> list[str]:
        """Messages of this conversation that started a turn, in this session or an earlier one."""
        self._sync()
        known = {um for um, c in self.checker.turn_conversation.items() if c == conversation_id}
        return sorted(known | {um for um, c in self.acked_users.items() if c == conversation_id})

    # --- waiting for a stage -------------------------------------------------------------------------------------

    def _stage_reachable(self, conversation: Conversation, stage: str) -> bool:
        if stage == "answered":  # only if no agent that needs a cancel can take part, or hold a slot it needs
            # A long agent running anywhere may hold the only call slot of an llm config this turn's agents share
            # (after "limit concurrency"): they would wait, as the contract allows, for as long as it runs.
            self._sync()
            if any(run.agent_name in cast.LONG for run in self.checker.running()):
                return False
            # An agent added just before may be a long one that this turn's read already includes (release run,
            # seed 146881739: the machine waited on a turn whose Endless had joined it).
            self._take_adds()
            if self.adds:  # still unanswered: who joined is not known yet
                return False
            return not set(conversation.members.values()) & cast.LONG
        able = {"thinking": set(cast.NAMES), "streaming": cast.STREAMERS, "retrying": cast.RETRIERS,
                "error": cast.FAILERS}[stage]
        return any(conversation.enabled[ca] and name in able for ca, name in conversation.members.items())

    def _wait_for_stage(self, conversation: Conversation, stage: str, turn: Request) -> None:
        """Until an agent of this new turn reaches `stage` — or the turn has answered, or every agent of it still
        running cannot get there by itself (thinking forever, queued, or not that kind of agent): the action then
        lands a little earlier, never never."""
        able = {"thinking": set(cast.NAMES), "streaming": cast.STREAMERS, "retrying": cast.RETRIERS,
                "error": cast.FAILERS}[stage]
        target = "error" if stage == "error" else stage

        def reached() -> bool:
            runs = [r for r in self.checker.turn_runs_of(conversation.id)
                    if r.started_at >= turn.sent_at and not r.maybe_retry]
            if turn.response is not None or any(u["status"] == target for r in runs for u in r.updates):
                return True
            running = [r for r in runs if r.running]
            return bool(runs) and all(r.agent_name not in able or r.agent_name in cast.NEVER_STREAMS_ALONE
                                      or r.updates[-1]["status"] == "queued" for r in running)

        self._wait(reached, f"a {stage} update of turn #{turn.id}")

    # --- reading stdout, or not ----------------------------------------------------------------------------------

    def _stop_or_resume_reading(self) -> None:
        """Stop reading stdout (the sidecar must hold back, never block or drop what it owes), or read again."""
        assert self.driver is not None
        if self.paused_steps is None:
            self.driver.stop_reading()
            self.paused_steps = 0
            self._note("stop reading stdout")
            counts.add("actions: stop reading stdout")
        else:
            self._resume_reading()

    def _resume_reading(self) -> None:
        assert self.driver is not None
        self.driver.resume_reading()
        self.paused_steps = None
        self._note("resume reading stdout")
        counts.add("actions: resume reading stdout")

    def _count_paused_step(self) -> None:
        if self.paused_steps is not None:
            self.paused_steps += 1

    # --- conversations ---------------------------------------------------------------------------------------------

    # --- quiet: every request answered, every agent settled --------------------------------------------------------

    def _settle_and_check(self) -> None:
        """Wait for quiet (reading stdout again first) and compare what was streamed with what was saved."""
        if self.paused_steps is not None:
            self._resume_reading()
        self._settle()
        self._check_quiet_session()
        self._note("settle")
        counts.add("quiet checks")

    def _settle(self) -> None:
        """Cancel the agents that never finish by themselves, and wait until nothing is pending or running."""
        cancelled: set[int] = set()

        def long_running() -> list[Run]:
            return [r for r in self.checker.running() if r.agent_name in cast.LONG and id(r) not in cancelled]

        def quiet() -> bool:
            return not self.checker.unanswered() and not self.checker.running()

        while True:
            self._sync()
            runs = long_running()
            if runs:
                cancelled.update(id(r) for r in runs)
                # A speaker turn's cancel alone lets its auto run go on (the next speaker may be long again): stop
                # the whole run.
                self._write([self._message("chat:cancel", {"conversationId": r.conversation_id} if r.run_id else
                                           {"conversationId": r.conversation_id, "conversationAgentId": r.ca})[0]
                             for r in runs])
            self._wait(lambda: quiet() or bool(long_running()), "a quiet session (every request answered)")
            if quiet():
                return

    def _check_quiet_session(self) -> None:
        self.checker.check_settled()
        self._take_adds()
        rows = self._rows()
        self.checker.check_replies(rows, self._may_be_gone, self.deleted_messages.__contains__)
        streaming = [r for r in rows.values() if r["status"] == "streaming"]
        assert not streaming, f"rows left streaming while nothing runs: {streaming}\n{self._story()}"
        self._check_stop_notices(rows)
        self._check_saved_rows(rows, kill=False)

    def _check_stop_notices(self, rows: dict[str, dict[str, Any]]) -> None:
        """Every auto run that stopped in this session (not at shutdown) saved its `Auto mode stopped: …` row."""
        for conversation in self._live():
            stopped = [a for a in self.checker.auto_runs.values()
                       if a.conversation_id == conversation.id and not a.running and a.reason != "shutdown"]
            notices = [r for r in rows.values() if r["conversationId"] == conversation.id and r["role"] == "system"
                       and r["content"].startswith("Auto mode stopped: ")]
            assert len(notices) >= len(stopped), (
                f"{len(stopped)} auto runs stopped in {conversation.id}, {len(notices)} stop notices saved\n"
                f"{self._story()}")
            counts.add("auto stop notices checked", len(stopped))

    def _rows(self) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for conversation in self._live():
            response = self._call("messages:list", {"conversationId": conversation.id})
            assert "result" in response, f"messages:list of a live conversation → {response}\n{self._story()}"
            rows.update({row["id"]: row for row in response["result"]})
        return rows

    def _take_adds(self) -> None:
        for request in [r for r in self.adds if r.response is not None]:
            self.adds.remove(request)
            row = request.response.get("result") if request.response else None
            conversation = self.conversations.get(row["conversationId"]) if row else None
            if row and conversation and not conversation.deleted:
                conversation.members[row["id"]], conversation.enabled[row["id"]] = row["agentName"], row["enabled"]

    def _may_be_gone(self, run: Run) -> bool:
        """Its reply (or notice) may have been deleted: with its conversation, agent, trigger or itself, or by a
        retry of that agent for that trigger (a speaker turn's reply answers some message of the run: any retry)."""
        conversation = self.conversations.get(run.conversation_id)
        retried = (run.ca, run.um) in self.retried or (run.run_id is not None and any(
            ca == run.ca for ca, _ in self.retried))
        return (conversation is None or conversation.deleted or run.ca in self.removed or run.um in
                self.deleted_messages or run.message_id in self.deleted_messages or retried)

    def _user_may_be_gone(self, um: str, conversation_id: str) -> bool:
        return self.conversations[conversation_id].deleted or um in self.deleted_messages

    def _check_saved_rows(self, rows: dict[str, dict[str, Any]], kill: bool) -> None:
        """What earlier steps and sessions acknowledged is still there, as it was acknowledged."""
        self._learn_from_session()
        live = {c.id for c in self._live()}
        problems: list[str] = []
        for um, conversation_id in self.acked_users.items():
            row = rows.get(um)
            if row is None:
                if conversation_id in live and not self._user_may_be_gone(um, conversation_id):
                    problems.append(f"acknowledged user message {um} is gone")
            elif um in self.contents and row["content"] != self.contents[um]:
                problems.append(f"user message {um} holds {row['content']!r}, sent {self.contents[um]!r}")
        for content in self.unsaved:
            if any(r["content"] == content and r["role"] == "user" for r in rows.values()):
                problems.append(f"a refused send was saved: {content!r}")
        for message_id, run in self.saved_replies.items():
            row = rows.get(message_id)
            if row is None:
                if not self._may_be_gone(run):
                    problems.append(f"{run.describe()}: its saved reply {message_id} is gone")
            elif (row["content"], row["status"]) != (run.text, run.status):
                problems.append(f"{run.describe()}: saved reply is {row['status']} {row['content'][:60]!r}, "
                                f"was {run.status} {run.text[:60]!r}")
        for message_id, (run, by_kill) in self.cut_replies.items():
            row = rows.get(message_id)
            allowed = {"complete", "cancelled", "error"} | ({"interrupted"} if by_kill else set())
            if row is not None and (row["status"] not in allowed or not row["content"].startswith(run.text)):
                problems.append(f"{run.describe()} was cut by an ending: row is {row['status']} "
                                f"{row['content'][:60]!r}, streamed {run.text[:60]!r}")
        interrupted = {i for i, r in rows.items() if r["status"] == "interrupted"}
        if kill:
            self.known_interrupted |= interrupted
        elif interrupted - self.known_interrupted:
            problems.append(f"rows interrupted without a kill: {sorted(interrupted - self.known_interrupted)}")
        assert not problems, "\n".join(problems) + "\n" + self._story()
        counts.add("saved rows re-checked", len(self.saved_replies) + len(self.acked_users))

    def _learn_from_session(self) -> None:
        """Fold this session's acknowledged messages and refused sends into what must (not) be saved."""
        self._sync()
        for request in self.checker.order:
            if request.response is None or request.method != "processUserMessage":
                continue
            content = request.params.get("content")
            if "result" in request.response:
                um = request.response["result"]["userMessageId"]
                self.acked_users[um] = request.params["conversationId"]
                if content is not None:
                    self.contents[um] = content
            elif content is not None and request.error_kind in ("busy", "shutting_down", "not_found"):
                self.unsaved.add(content)
        for um, conversation_id in self.checker.turn_conversation.items():
            self.acked_users.setdefault(um, conversation_id)  # an update or all:complete named it: it was saved
        self.deletes_answered |= {r.params["id"] for r in self.checker.order if r.method == "conversations:delete"
                                  and r.response is not None and "result" in r.response}

    # --- ending the process, and starting it again ------------------------------------------------------------------

    def _end_session(self, how: str, behind_a_turn: bool, room: int) -> None:
        """End the process, maybe right behind a new turn (shutdown in the same write, a signal right after it
        is written), then start it again on the same data dir."""
        if self.paused_steps is not None:  # shutdown's answer and EOF's need a reader: SIGTERM and kill do not
            how = {"shutdown": "sigterm", "eof": "kill"}.get(how, how)
        turn = None
        if behind_a_turn and how != "eof" and self._live():
            params = {"conversationId": _choose(self._live(), room).id, "content": f"m{next(self.sent)} last words"}
            turn = self._message("processUserMessage", params)[0]
        self._end(how, turn)
        self._restart(kill=how == "kill")

    def _end(self, how: str, turn: dict[str, Any] | None = None) -> None:
        assert self.driver is not None
        reading = self.paused_steps is None
        behind = " right behind a turn" if turn else ""
        self._note(f"end the session by {how}{behind}{'' if reading else ' while stdout is not read'}")
        counts.add(f"endings: {how}{behind}{'' if reading else ' (stdout not read)'}")
        if turn is not None and how != "shutdown":
            self._write([turn])
        if how == "kill":
            assert self.driver.kill_now() == -9
        elif how == "sigterm":
            self.checker.sigterm_sent()
            self._assert_clean_exit(self.driver.sigterm(), "SIGTERM")
            self._sync()
            if reading:  # nothing had to be dropped: every agent that started was settled on the wire
                for run in self.checker.running():
                    self.checker.violations.append(f"after SIGTERM {run.describe()} never got its terminal update")
                for auto in self.checker.unstopped():
                    self.checker.violations.append(f"after SIGTERM {auto.describe()} never sent auto:state stopped")
        elif how == "shutdown":
            frame, shutdown = self._message("shutdown", {})
            self._write([turn, frame] if turn else [frame])
            self._shutdown_and_exit(shutdown)
        else:
            self._settle()
            self._take_adds()  # an agent added meanwhile may be a long one: the turn below must end by itself
            in_flight = self._short_turn_frames()  # EOF means "no more requests": this turn still answers
            self._write(in_flight)
            self._assert_clean_exit(self.driver.close_stdin_now(), "stdin EOF", bounded=not in_flight)
            self._sync()
            self.checker.check_settled()
        if how != "kill":
            left = rows_in_database(self.data_dir, "streaming")
            assert not left, f"{how} left rows streaming (they must be settled): {left}\n{self._story()}"
        self._raise_if_broken()

    def _shutdown_and_exit(self, shutdown: Request) -> None:
        """shutdown answers; every request read before it answers (a turn with its result); later ones get
        -32014; then `exit` ends the process with code 0 within 2 s."""
        assert self.driver is not None
        before = self.checker.order[: self.checker.order.index(shutdown)]
        self._wait(lambda: shutdown.response is not None and all(r.response is not None for r in before),
                   "the answers to shutdown and to every request sent before it")
        probe_frame, probe = self._message("ping", {})
        self._write([probe_frame])
        self._wait(lambda: probe.response is not None, "the answer to a ping after shutdown")
        self._write([{"jsonrpc": "2.0", "method": "exit"}])
        self._assert_clean_exit(time.monotonic(), "exit after shutdown")
        self._sync()
        self.checker.check_settled()

    def _short_turn_frames(self) -> list[Any]:
        """A turn for stdin EOF to find in flight, in a conversation whose agents all finish by themselves (an auto
        run only when there is no other: it takes a few speakers)."""
        for conversation in sorted(self._live(), key=lambda c: c.mode == "auto"):
            if conversation.members and not set(conversation.members.values()) & cast.LONG:
                params = {"conversationId": conversation.id, "content": f"m{next(self.sent)} before EOF"}
                return [self._message("processUserMessage", params)[0]]
        return []

    def _assert_clean_exit(self, since: float, after: str, bounded: bool = True) -> None:
        assert self.driver is not None
        try:
            code, took = self.driver.exit_code_within_contract(since)
        except AssertionError as hang:
            self._sync()
            pending = [f"{r.method} #{r.id}" for r in self.checker.unanswered()]
            raise AssertionError(f"{hang} after {after}; unanswered: {pending}; running: "
                                 f"{[r.describe() for r in self.checker.running()]}\n{self._story()}\n"
                                 f"{self._keep_trace()}") from None
        assert code == 0, f"exit code {code} after {after}; stderr: {self.driver.stderr_lines[-5:]}\n{self._story()}"
        if bounded:
            assert took <= EXIT_WITHIN_SECONDS, f"{took:.2f} s to exit after {after} (contract: 2 s)\n{self._story()}"

    def _restart(self, kill: bool) -> None:
        self._learn_from_session()
        for run in self.checker.settled_runs():
            if run.message_id:
                self.saved_replies[run.message_id] = run
        for run in self.checker.running():
            if run.message_id:
                self.cut_replies[run.message_id] = (run, kill)
        self._merge_counts()
        self._spawn()
        cast.restore_keys(self._result_of, self.configs)
        listed_rows = self._result_of("conversations:list")  # the checker learns each conversation's mode here
        listed = {row["id"] for row in listed_rows}
        for conversation in self.conversations.values():
            if conversation.id not in listed:
                assert conversation.deleted, f"conversation {conversation.id} vanished\n{self._story()}"
                conversation.deleted = True
                continue
            assert conversation.id not in self.deletes_answered, f"deleted conversation {conversation.id} is back"
            conversation.deleted = False  # a delete the ending cut short never happened
            conversation.mode = next(row["chatMode"] for row in listed_rows if row["id"] == conversation.id)
            rows = self._result_of("conversationAgents:list", {"conversationId": conversation.id})
            conversation.members = {row["id"]: row["agentName"] for row in rows}
            conversation.enabled = {row["id"]: row["enabled"] for row in rows}
        self.adds.clear()
        rows = self._rows()
        streaming = [r for r in rows.values() if r["status"] == "streaming"]
        assert not streaming, f"rows still streaming after a restart: {streaming}\n{self._story()}"
        self._check_saved_rows(rows, kill=kill)

    # --- invariants and reporting ---------------------------------------------------------------------------------

    @invariant()
    def promises_kept(self) -> None:
        if self.driver is None:
            return
        self._sync()
        if self.driver.proc.poll() is not None:
            self.checker.violations.append(f"the sidecar exited by itself with code {self.driver.proc.poll()}")
        self._raise_if_broken()

    def _raise_if_broken(self) -> None:
        assert self.driver is not None
        broken = self.checker.violations + [f"schema: {e}" for e in self.driver.schema_errors]
        assert not broken, "broken promises:\n  " + "\n  ".join(broken[:20]) + "\n" + self._story() + "\n" + (
            self._keep_trace())

    def _keep_trace(self) -> str:
        """The session's requests and frames, kept in the test's tmp dir for the report of a broken promise."""
        assert self.driver is not None
        path = self.env.root / f"broken-example-{self.data_dir.name}-session-{self.session}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for request in self.checker.order:
                out.write(json.dumps({"sent at frame": request.sent_at, "request": request.id,
                                      "method": request.method, "params": request.params}) + "\n")
            for position, frame in enumerate(self.driver.trace):
                out.write(json.dumps({"frame": position, "read": frame}) + "\n")
        return f"requests and frames of this session: {path}"

    def _merge_counts(self) -> None:
        counts.merge(self.checker.counts)
        counts.merge(self.checker.tolerated, prefix="known engine bug, tolerated: ")

    def _note(self, line: str) -> None:
        self.log.append(f"[session {self.session}] {line}")

    def _story(self) -> str:
        tail = "\n  ".join(self.log[-30:])
        stderr = self.driver.stderr_lines[-3:] if self.driver else []
        return f"last steps:\n  {tail}\nstderr tail: {stderr}"

    def teardown(self) -> None:
        if self.driver is None:
            return
        try:
            if self.clean:
                if self.paused_steps is not None:
                    self._resume_reading()
                self._end("eof")
                self._merge_counts()
        finally:
            if self.driver.proc.poll() is None:
                self.driver.kill_now()
            shutil.rmtree(self.data_dir, ignore_errors=True)  # a release run starts hundreds of data dirs


def test_any_interleaving_of_user_actions_keeps_the_contracts_promises(
    fake_provider: FakeProvider, tmp_path: Path
) -> None:
    fake_provider.reset()
    env = Environment(fake_provider, tmp_path)
    seed = profile_seed()
    counts.note("seed", "derandomized (quick profile)" if seed is None else str(seed))
    factory: Callable[[], ChatMachine] = lambda: ChatMachine(env)  # noqa: E731
    if seed is not None:
        factory = hypothesis.seed(seed)(factory)
    counts.note("profile", profile_name())
    run_state_machine_as_test(factory, settings=profile_settings())
