"""The trace checker's own judgments, on hand-written traces: what it accepts and each promise it catches broken."""

from __future__ import annotations

from typing import Any

import pytest

from tests.interleaving.modes import SettingsLog
from tests.interleaving.trace import TraceChecker

CONV, OTHER = "c1", "c2"


def update(ca: str, um: str, seq: int, status: str, conv: str = CONV, **fields: Any) -> dict[str, Any]:
    params = {"conversationId": conv, "conversationAgentId": ca, "agentId": f"agent-{ca}", "agentName": ca.upper(),
              "userMessageId": um, "status": status, "seq": seq, **fields}
    return {"jsonrpc": "2.0", "method": "agent:update", "params": params}


def all_complete(um: str, conv: str = CONV) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "all:complete", "params": {"conversationId": conv, "userMessageId": um}}


def result(request_id: int, value: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": value}


def error(request_id: int, code: int, kind: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": "x"}
    if kind:
        body["data"] = {"kind": kind}
    return {"jsonrpc": "2.0", "id": request_id, "error": body}


def agent_result(ca: str, status: str, **fields: Any) -> dict[str, Any]:
    return {"conversationAgentId": ca, "agentId": f"agent-{ca}", "agentName": ca.upper(), "status": status,
            "durationMs": 5, **fields}


def turn_result(um: str, *results: dict[str, Any]) -> dict[str, Any]:
    statuses = [r["status"] for r in results]
    return {"userMessageId": um, "totalAgents": len(results), "successfulAgents": statuses.count("complete"),
            "failedAgents": statuses.count("error"), "cancelledAgents": statuses.count("cancelled"),
            "totalDurationMs": 9, "agentResults": list(results)}


def a_good_turn(um: str = "u1", request_id: int = 1) -> list[dict[str, Any]]:
    return [
        update("a", um, 1, "thinking"), update("b", um, 1, "thinking"),
        update("a", um, 2, "streaming", delta="Hel", messageId="r1"),
        update("b", um, 2, "queued"),
        update("a", um, 3, "streaming", delta="lo", messageId="r1"),
        update("b", um, 3, "cancelled"),
        update("a", um, 4, "complete", messageId="r1", usage={"firstTokenMs": 1, "totalMs": 2}),
        all_complete(um),
        result(request_id, turn_result(um, agent_result("a", "complete", messageId="r1"),
                                       agent_result("b", "cancelled"))),
    ]


def checked(trace: list[Any], *requests: tuple[int, str, dict[str, Any]]) -> TraceChecker:
    checker = TraceChecker()
    for request_id, method, params in requests or [(1, "processUserMessage", {"conversationId": CONV})]:
        checker.register(request_id, method, params, 0)
    checker.feed(trace)
    return checker


def test_a_well_formed_turn_breaks_no_promise_and_its_reply_matches_its_row() -> None:
    checker = checked(a_good_turn())
    checker.check_settled()
    rows = {"r1": {"content": "Hello", "status": "complete", "conversationAgentId": "a", "replyToId": "u1"}}
    checker.check_replies(rows, lambda run: False)
    assert checker.violations == []
    assert checker.counts["terminal updates checked"] == 2


@pytest.mark.parametrize(
    ("name", "edit", "complaint"),
    [
        ("a seq gap", lambda t: t.pop(4), "seq 4 after 2"),
        ("an update after the terminal one", lambda t: t.insert(7, update("a", "u1", 5, "streaming", delta="!",
                                                                         messageId="r1")), "after its terminal"),
        ("a terminal update without thinking", lambda t: t.insert(0, update("z", "u1", 1, "cancelled")),
         "not thinking"),
        ("queued after text", lambda t: t.insert(3, update("a", "u1", 3, "queued")), "queued must come right after"),
        ("all:complete while an agent runs", lambda t: t.insert(2, all_complete("u1")), "still running"),
        ("the answer before all:complete", lambda t: t.insert(7, t.pop(8)), "before its all:complete"),
        ("a second answer", lambda t: t.append(t[-1]), "answered twice"),
        ("an agent missing from the result", lambda t: t[-1]["result"]["agentResults"].pop(),
         "not in agentResults"),
        ("a result that disagrees with the updates",
         lambda t: t[-1]["result"]["agentResults"][1].update(status="complete", messageId="r9"),
         "its terminal updates were ['cancelled']"),
        ("complete naming another row", lambda t: t[6]["params"].update(messageId="r2"), "complete names r2"),
    ],
)
def test_each_broken_promise_is_reported(name: str, edit: Any, complaint: str) -> None:
    trace = a_good_turn()
    edit(trace)
    checker = checked(trace)
    checker.check_settled()
    assert any(complaint in v for v in checker.violations), (name, checker.violations)


def test_an_internal_error_and_a_busy_without_reject_are_never_legitimate() -> None:
    checker = checked([error(1, -32603), error(2, -32014, "busy"), error(3, -32014, "busy")],
                      (1, "messages:list", {"conversationId": CONV}),
                      (2, "processUserMessage", {"conversationId": CONV, "content": "x"}),
                      (3, "processUserMessage", {"conversationId": CONV, "content": "x", "onBusy": "reject"}))
    assert len(checker.violations) == 2 and "-32603" in checker.violations[0] and "busy" in checker.violations[1]


def test_minus_32800_only_for_a_request_that_was_cancelled() -> None:
    checker = TraceChecker()
    checker.register(1, "processUserMessage", {"conversationId": CONV}, 0)
    checker.register(2, "processUserMessage", {"conversationId": CONV}, 0)
    checker.cancel_requested(1)
    checker.feed([error(1, -32800), error(2, -32800)])
    assert len(checker.violations) == 1 and "#2" in checker.violations[0]


def test_after_shutdown_everything_is_refused_as_shutting_down() -> None:
    checker = TraceChecker()
    checker.register(1, "shutdown", {}, 0)
    checker.register(2, "ping", {}, 0)
    checker.register(3, "ping", {}, 0)
    checker.feed([result(1, None), error(2, -32014, "shutting_down"), result(3, {})])
    assert len(checker.violations) == 1 and "after shutdown got a result" in checker.violations[0]


def test_a_new_turn_may_not_start_while_another_turn_of_its_conversation_runs() -> None:
    second_turn = [update("b", "u2", 1, "thinking"), update("b", "u2", 2, "cancelled"), all_complete("u2"),
                   result(2, turn_result("u2", agent_result("b", "cancelled")))]
    checker = TraceChecker()
    checker.register(1, "processUserMessage", {"conversationId": CONV}, 0)
    checker.register(2, "processUserMessage", {"conversationId": CONV}, 1)
    checker.feed([update("a", "u1", 1, "thinking"), *second_turn, update("c", "u3", 1, "thinking", conv=OTHER)])
    assert len(checker.violations) == 1 and "turn u2 started while A in turn u1" in checker.violations[0]


def test_a_retry_written_after_a_turn_may_overlap_it_one_written_before_may_not() -> None:
    retry = {"conversationId": CONV, "conversationAgentId": "a", "userMessageId": "u0"}
    second_turn = [update("b", "u2", 1, "thinking"), update("b", "u2", 2, "cancelled"), all_complete("u2"),
                   result(2, turn_result("u2", agent_result("b", "cancelled")))]
    for turn_sent_at, complaints in ((1, 0), (2, 1)):  # the retry's run started at frame 1
        checker = TraceChecker()
        checker.register(3, "chat:retryAgent", retry, 1)
        checker.register(2, "processUserMessage", {"conversationId": CONV}, turn_sent_at)
        checker.feed([update("x", "u0", 1, "thinking"), update("a", "u0", 1, "thinking"), *second_turn])
        assert len(checker.violations) == 1 + complaints, checker.violations  # 1: X's run of u0, not a retry


def test_a_retry_run_starts_again_at_seq_1_but_not_before_the_previous_run_ended() -> None:
    retry = (2, "chat:retryAgent", {"conversationId": CONV, "conversationAgentId": "a", "userMessageId": "u1"})
    first = [update("a", "u1", 1, "thinking"), update("a", "u1", 2, "error", errorType="auth", retryable=False,
                                                      error="No.", messageId="s1"), all_complete("u1")]
    again = [update("a", "u1", 1, "thinking"), update("a", "u1", 2, "streaming", delta="Hi", messageId="r2"),
             update("a", "u1", 3, "complete", messageId="r2"), all_complete("u1"),
             result(2, agent_result("a", "complete", messageId="r2"))]
    checker = TraceChecker()
    checker.register(1, "processUserMessage", {"conversationId": CONV}, 0)
    checker.feed(first)
    checker.register(*retry, sent_at=len(first))  # its run's thinking is the very next frame
    checker.feed(first + again)
    assert checker.violations == []
    checker = checked([first[0], *again[:1]], retry)
    assert any("before its terminal update" in v for v in checker.violations)


def test_a_reply_whose_row_differs_from_its_deltas_is_reported_and_a_deleted_one_may_be_gone() -> None:
    checker = checked(a_good_turn())
    checker.check_replies({"r1": {"content": "Hell", "status": "complete", "conversationAgentId": "a",
                                  "replyToId": "u1"}}, lambda run: False)
    assert len(checker.violations) == 1 and "'Hell'" in checker.violations[0]
    checker = checked(a_good_turn())
    checker.check_replies({}, lambda run: True)
    assert checker.violations == []
    checker.check_replies({}, lambda run: False)
    assert "is gone" in checker.violations[0]


# --- auto runs (CONTRACT §5b) -------------------------------------------------------------------------------------

RUN = "run-000001"
UM = "m1"  # ids are time-ordered (UUIDv7): m1 < r1 < r2 as strings, like the rows they name


def auto_state(state: str, replies: int, reason: str | None = None, run_id: str = RUN,
               conv: str = CONV) -> dict[str, Any]:
    params: dict[str, Any] = {"conversationId": conv, "runId": run_id, "state": state, "replies": replies}
    if reason:
        params["reason"] = reason
    return {"jsonrpc": "2.0", "method": "auto:state", "params": params}


def speaker(ca: str, seq: int, status: str, round_: int = 1, um: str = UM, run_id: str = RUN,
            **fields: Any) -> dict[str, Any]:
    return update(ca, um, seq, status, runId=run_id, round=round_, **fields)


def conversation_row(mode: str, max_messages: int = 2, style: str = "sequential", conv: str = CONV) -> dict[str, Any]:
    return {"id": conv, "chatMode": mode, "autoSettings": {"maxMessages": max_messages, "style": style, "delayMs": 0}}


def a_good_auto_run(um: str = UM, request_id: int = 1) -> list[dict[str, Any]]:
    """Sequential, maxMessages 2: A speaks, B skips, A speaks again in round 2 (seq from 1 each speaker turn)."""
    summary = {"runId": RUN, "rounds": 2, "replies": 2, "stopReason": "max_messages"}
    return [
        auto_state("running", 0),
        speaker("a", 1, "thinking", um=um), speaker("a", 2, "streaming", um=um, delta="Hi", messageId="r1"),
        speaker("a", 3, "complete", um=um, messageId="r1"),
        speaker("b", 1, "thinking", um=um), speaker("b", 2, "skipped", um=um, messageId="n1"),
        speaker("a", 1, "thinking", 2, um=um), speaker("a", 2, "streaming", 2, um=um, delta="Again", messageId="r2"),
        speaker("a", 3, "complete", 2, um=um, messageId="r2"),
        auto_state("stopped", 2, "max_messages"),
        all_complete(um),
        result(request_id, {**turn_result(um, agent_result("a", "complete", messageId="r1"),
                                          agent_result("b", "skipped"), agent_result("a", "complete", messageId="r2")),
                            "auto": summary}),
    ]


def checked_in_mode(trace: list[Any], row: dict[str, Any], method: str = "processUserMessage",
                    tolerate: frozenset[str] = frozenset()) -> TraceChecker:
    """The conversation is created with `row`'s settings (frame 0), then the request is written."""
    checker = TraceChecker(tolerate=tolerate)
    checker.register(0, "conversations:create", {"title": "t"}, 0)
    checker.feed([result(0, row)])
    checker.register(1, method, {"conversationId": CONV, "content": "go"} if method == "processUserMessage"
                     else {"conversationId": CONV}, 1)
    checker.feed([result(0, row), *trace])
    return checker


ROWS = {
    "r1": {"content": "Hi", "status": "complete", "conversationAgentId": "a", "replyToId": UM},
    "n1": {"content": "B skipped their turn", "status": "complete", "role": "system", "conversationAgentId": None,
           "replyToId": "r1"},
    "r2": {"content": "Again", "status": "complete", "conversationAgentId": "a", "replyToId": "r1"},
}


def test_a_well_formed_auto_run_breaks_no_promise_and_its_replies_and_skip_match_their_rows() -> None:
    checker = checked_in_mode(a_good_auto_run(), conversation_row("auto"))
    checker.check_settled()
    checker.check_replies(ROWS, lambda run: False)
    assert checker.violations == []
    assert checker.counts["auto results checked"] == 1
    assert checker.counts["replies compared with their rows"] == 2
    assert checker.counts["skip notices compared with their rows"] == 1


def _drop_runid(trace: list[Any]) -> None:
    del trace[2]["params"]["runId"]


def _second_all_complete(trace: list[Any]) -> None:
    trace.insert(4, all_complete(UM))


def _after_the_stop(trace: list[Any]) -> None:
    trace.insert(10, speaker("b", 1, "thinking", 2))
    trace.insert(11, speaker("b", 2, "cancelled", 2))


def _two_speakers_at_once(trace: list[Any]) -> None:
    trace.insert(2, trace.pop(4))  # B thinks while A still runs


def _round_back(trace: list[Any]) -> None:
    for frame in trace[6:9]:
        frame["params"]["round"] = 1
    for frame in trace[1:4]:
        frame["params"]["round"] = 2


@pytest.mark.parametrize(
    ("name", "edit", "complaint"),
    [
        ("an update of a speaker turn without its runId", _drop_runid, "runId/round"),
        ("all:complete while the run goes on", _second_all_complete, "goes on (one, when it stops)"),
        ("a speaker turn after the run stopped", _after_the_stop, "an auto run that is not running"),
        ("stopped with the wrong reply count", lambda t: t[9]["params"].update(replies=3), "replies 3, but 2"),
        ("all_skipped after a reply", lambda t: t[9]["params"].update(reason="all_skipped"),
         "did not skip"),
        ("a stop reason outside the contract", lambda t: t[9]["params"].update(reason="bored"),
         "not one of the contract's"),
        ("error with no failed speaker", lambda t: t[9]["params"].update(reason="error"), "none of its speaker turns"),
        ("a result disagreeing with the stop", lambda t: t[11]["result"]["auto"].update(stopReason="cancelled"),
         "auto:state stopped said"),
        ("a result missing a speaker turn", lambda t: t[11]["result"]["agentResults"].pop(1),
         "disagree with its speaker turns"),
        ("a skip after text", lambda t: t.insert(5, speaker("b", 2, "streaming", delta="SK", messageId="x")),
         "a SKIP is never shown"),
        ("two speakers at once in sequential style", _two_speakers_at_once, "one speaker at a time"),
        ("a round going back", _round_back, "after round 2 had started"),
        ("the answer before the stop", lambda t: t.insert(9, t.pop(11)), "before its auto:state stopped"),
        ("more replies than maxMessages", lambda t: None, "more than maxMessages 1"),
        ("user_message with no other message", lambda t: (t[9]["params"].update(reason="user_message"),
                                                          t[11]["result"]["auto"].update(stopReason="user_message")),
         "no other message was sent"),
        ("shutdown with no shutdown", lambda t: t[9]["params"].update(reason="shutdown"), "neither shutdown nor"),
        ("a second all:complete after the stop", lambda t: t.insert(10, all_complete(UM)), "sent 2 times"),
    ],
)
def test_each_broken_auto_run_promise_is_reported(name: str, edit: Any, complaint: str) -> None:
    trace = a_good_auto_run()
    edit(trace)
    max_messages = 1 if "maxMessages" in name else 2
    checker = checked_in_mode(trace, conversation_row("auto", max_messages))
    checker.check_settled()
    assert any(complaint in v for v in checker.violations), (name, checker.violations)


def test_a_skip_outside_an_auto_run_and_a_run_that_never_stops_are_reported() -> None:
    checker = checked([update("a", UM, 1, "thinking"), update("a", UM, 2, "skipped", messageId="n1")])
    assert any("skipped outside an auto run" in v for v in checker.violations)
    checker = checked_in_mode(a_good_auto_run()[:9], conversation_row("auto"))
    checker.check_settled()
    assert any("never sent auto:state stopped" in v for v in checker.violations), checker.violations


def test_no_speaker_after_the_run_failed_and_one_auto_run_at_a_time_per_conversation() -> None:
    failed = [auto_state("running", 0), speaker("a", 1, "thinking"),
              speaker("a", 2, "error", errorType="auth", retryable=False, error="No.", messageId="s1"),
              speaker("b", 1, "thinking"), speaker("b", 2, "skipped", messageId="n1"),
              auto_state("stopped", 0, "error"), all_complete(UM),
              result(1, {**turn_result(UM, agent_result("a", "error"), agent_result("b", "skipped")),
                         "auto": {"runId": RUN, "rounds": 1, "replies": 0, "stopReason": "error"}})]
    checker = checked_in_mode(failed, conversation_row("auto"))
    assert any("spoke after A in round 1" in v for v in checker.violations), checker.violations
    checker = checked_in_mode([auto_state("running", 0), auto_state("running", 0, run_id="run-000002")],
                              conversation_row("auto"))
    assert any("had not stopped" in v for v in checker.violations), checker.violations


def test_once_a_switch_away_from_auto_has_answered_the_run_says_nothing_more() -> None:
    trace = a_good_auto_run()
    switch = result(2, conversation_row("manual"))
    trace.insert(6, switch)  # answered before A's second speaker turn
    checker = TraceChecker()
    checker.register(0, "conversations:create", {"title": "t"}, 0)
    checker.feed([result(0, conversation_row("auto"))])
    checker.register(1, "processUserMessage", {"conversationId": CONV, "content": "go"}, 1)
    checker.register(2, "conversations:update", {"id": CONV, "chatMode": "manual"}, 1)
    checker.feed([result(0, conversation_row("auto")), *trace])
    assert any("still spoke after conversations:update #2" in v for v in checker.violations), checker.violations


def test_round_robin_answers_with_one_agent_and_auto_mode_never_with_a_plain_turn() -> None:
    two = a_good_turn()
    two[-1]["result"]["agentResults"][1]["status"] = "cancelled"
    checker = checked_in_mode(two, conversation_row("round-robin"))
    assert any("round-robin turn ran 2 agents" in v for v in checker.violations), checker.violations
    checker = checked_in_mode(a_good_turn(), conversation_row("auto"))
    assert any("answered with a plain turn" in v for v in checker.violations), checker.violations
    assert checked_in_mode(a_good_turn(), conversation_row("manual")).violations == []


def test_start_auto_is_refused_as_validation_only_when_the_mode_may_not_be_auto_and_busy_only_during_a_turn() -> None:
    refused = [error(1, -32012, "validation")]
    assert checked_in_mode(refused, conversation_row("manual"), "chat:startAuto").violations == []
    assert len(checked_in_mode(refused, conversation_row("auto"), "chat:startAuto").violations) == 1
    busy = [error(1, -32014, "busy")]
    assert len(checked_in_mode(busy, conversation_row("auto"), "chat:startAuto").violations) == 1
    checker = TraceChecker()
    checker.register(1, "processUserMessage", {"conversationId": CONV, "content": "x"}, 0)
    checker.register(2, "chat:startAuto", {"conversationId": CONV}, 0)
    checker.feed([error(2, -32014, "busy")])
    assert checker.violations == []


def test_a_speaker_that_answers_an_older_message_than_the_latest_and_a_wrong_skip_notice_are_reported() -> None:
    checker = checked_in_mode(a_good_auto_run(), conversation_row("auto"))
    stale = {**ROWS, "r2": {**ROWS["r2"], "replyToId": "a0"}, "n1": {**ROWS["n1"], "content": "B said SKIP"}}
    checker.check_replies(stale, lambda run: False)
    assert len(checker.violations) == 2, checker.violations
    assert "answers a0, older than r1" in checker.violations[0] and "skip notice is" in checker.violations[1]


def test_a_known_engine_bug_is_counted_not_failed_when_tolerated_and_reported_when_strict() -> None:
    trace = a_good_auto_run()
    row = conversation_row("auto", 1, "rounds")
    strict = checked_in_mode(trace, row)
    assert any("more than maxMessages 1" in v for v in strict.violations)
    lenient = checked_in_mode(a_good_auto_run(), row, tolerate=frozenset({"rounds-overshoot"}))
    assert not any("maxMessages" in v for v in lenient.violations) and sum(lenient.tolerated.values()) >= 1


def test_the_modes_a_turn_may_have_read_are_the_current_one_and_those_of_updates_in_flight() -> None:
    log = SettingsLog()
    log.row_read(0, 1, conversation_row("manual"))
    switch = log.update_sent(CONV, 2, {"chatMode": "auto"})
    assert {s.mode for s in log.possible(CONV, 3, 5) or []} == {"manual", "auto"}  # the switch may not have applied
    log.update_answered(CONV, switch, 4, conversation_row("auto"))
    assert {s.mode for s in log.possible(CONV, 3, 5) or []} == {"manual", "auto"}  # still in flight at position 3
    assert {s.mode for s in log.possible(CONV, 6, 8) or []} == {"auto"}  # answered before the turn was written
    refused = log.update_sent(CONV, 9, {"chatMode": "round-robin"})
    log.update_answered(CONV, refused, 10, None)  # an error changes nothing
    assert {s.mode for s in log.possible(CONV, 11, 12) or []} == {"auto"}
    assert log.possible("unknown", 0, 1) is None
