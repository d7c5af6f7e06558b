"""The trace checker's own judgments, on hand-written traces: what it accepts and each promise it catches broken."""

from __future__ import annotations

from typing import Any

import pytest

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
