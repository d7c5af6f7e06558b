"""Regressions of the v2 engine, one per reported row, each reproduced over stdio (CONTRACT §2, §4, §5, §6).

Every one of these broke on the v1 engine: a change while an agent runs, `shutdown` or `$/cancelRequest` right
behind a turn, SIGTERM while the client is not reading, a cancel racing a partial save, a retry's `all:complete`
while a sibling streams, `onBusy`, and concurrency on one llm config. Agents that must still be running when the
test acts are ones that never finish by themselves (`hang`, or 100,000 words): no outcome depends on timing. The
only timing asserted is the contract's "exit within 2 s".
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import integrity_check
from tests.fake_provider import FakeProvider
from tests.interleaving.driver import EXIT_WITHIN_SECONDS, Driver, rows_in_database
from tests.sidecar_client import HANG_GUARD_SECONDS
from tests.stdio import chat_setup
from tests.stdio.chat_setup import (
    Room,
    assert_well_formed_updates,
    fake_config,
    messages,
    requests_for,
    room_with,
    streamed_text,
)

fake = chat_setup.fake  # the session's fake server, reset for each test

ENDLESS = "gpt-words-100000-pace-20"  # streams for half an hour: always still running when the test acts
PACED = "gpt-words-30-pace-10"  # finishes by itself in about 0.3 s
INTERNAL_ERROR = -32603


@pytest.fixture(params=["ndjson", "lsp"])
def driver(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Driver]:
    process = Driver(tmp_path / "data", framing=request.param)
    yield process
    if process.proc.poll() is None:
        process.kill_now()
    assert process.unmatched == [], "a request was answered twice"
    assert process.schema_errors == [], process.schema_errors


# --- helpers ----------------------------------------------------------------------------------------------------------


def _tag() -> str:
    return uuid.uuid4().hex[:8]  # the fake's flaky counters and gates are per model name: this test's own


def _updates(d: Driver, ca: str, um: str | None = None) -> list[dict[str, Any]]:
    return [u for u in d.updates(ca) if um is None or u["userMessageId"] == um]


def _wait_status(d: Driver, ca: str, status: str) -> dict[str, Any]:
    return d.wait_notification(lambda n: n["method"] == "agent:update" and n["params"]["conversationAgentId"] == ca
                               and n["params"]["status"] == status)["params"]


def _answer(d: Driver, request_id: Any) -> dict[str, Any]:
    response = d.response(request_id)
    assert response.get("error", {}).get("code") != INTERNAL_ERROR, response
    return response


def _result(d: Driver, request_id: Any) -> dict[str, Any]:
    response = _answer(d, request_id)
    assert "result" in response, f"expected a result, got {response}"
    return response["result"]


def _request_frame(d: Driver, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request_id = d.next_id()
    return request_id, {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def _positions(d: Driver, predicate: Callable[[dict[str, Any]], bool]) -> list[int]:
    """Where in stdout's order the frames matching `predicate` came."""
    with d._lock:
        return [i for i, f in enumerate(d.trace) if isinstance(f, dict) and predicate(f)]


def _is_update(ca: str, um: str, statuses: frozenset[str] = chat_setup.TERMINAL) -> Callable[[dict[str, Any]], bool]:
    return lambda f: (f.get("method") == "agent:update" and f["params"]["conversationAgentId"] == ca
                      and f["params"]["userMessageId"] == um and f["params"]["status"] in statuses)


def _is_all_complete(um: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("method") == "all:complete" and f["params"]["userMessageId"] == um


def _is_response(request_id: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda f: "method" not in f and f.get("id") == request_id


def _no_internal_error_anywhere(d: Driver) -> None:
    with d._lock:
        errors = [f for f in d.trace if isinstance(f, dict) and f.get("error", {}).get("code") == INTERNAL_ERROR]
    assert errors == [], errors


def _shutdown_and_exit(d: Driver) -> None:
    """shutdown, then exit: code 0 within the contract's 2 s; every frame the process wrote has been read."""
    assert d.call("shutdown") is None
    started = time.monotonic()
    d.notify("exit")
    code, took = d.exit_code_within_contract(started)
    assert code == 0 and took <= EXIT_WITHIN_SECONDS, (code, took)


# --- a. changing things while an agent of the turn runs ---------------------------------------------------------------

CHANGES = ["conversationAgents:remove", "conversationAgents:update enabled false", "messages:delete of the trigger",
           "conversations:delete"]


def _change(d: Driver, change: str, room: Room, user_message_id: str) -> Any:
    if change == "conversationAgents:remove":
        return d.request("conversationAgents:remove", {"id": room.ca("Target")})
    if change == "conversationAgents:update enabled false":
        return d.request("conversationAgents:update", {"id": room.ca("Target"), "enabled": False})
    if change == "messages:delete of the trigger":
        return d.request("messages:delete", {"id": user_message_id})
    return d.request("conversations:delete", {"id": room.conversation_id})


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_while_an_agent_streams_cancels_it_once_and_the_turn_still_answers_and_completes(
    driver: Driver, fake: FakeProvider, change: str
) -> None:
    config = fake_config(driver, fake, "openai")
    whole_room = change == "conversations:delete"  # then every agent of the turn is affected: both never finish
    room = room_with(driver, [("Target", config, ENDLESS), ("Sibling", config, ENDLESS if whole_room else PACED)])
    other = room_with(driver, [("Other", config, PACED)])  # another conversation: never touched
    turn = driver.request("processUserMessage", {"conversationId": room.conversation_id, "content": "Go on"})
    other_turn = driver.request("processUserMessage", {"conversationId": other.conversation_id, "content": "Hi"})
    um = _wait_status(driver, room.ca("Target"), "streaming")["userMessageId"]
    if whole_room:
        _wait_status(driver, room.ca("Sibling"), "streaming")

    changed = _answer(driver, _change(driver, change, room, um))
    assert "result" in changed, f"{change} must not fail because a turn runs: {changed}"
    result = _result(driver, turn)  # never -32603: the turn's request answers with its result

    target = assert_well_formed_updates(_updates(driver, room.ca("Target"), um))
    assert target["status"] == "cancelled" and target.get("messageId"), target
    sibling = assert_well_formed_updates(_updates(driver, room.ca("Sibling"), um))
    expected_sibling = {"conversations:delete": {"cancelled"}, "messages:delete of the trigger":
                        {"complete", "cancelled"}}.get(change, {"complete"})
    assert sibling["status"] in expected_sibling, (change, sibling["status"])
    statuses = {r["conversationAgentId"]: r["status"] for r in result["agentResults"]}
    assert statuses[room.ca("Target")] == "cancelled"
    done = _positions(driver, _is_all_complete(um))
    last_terminal = max(_positions(driver, _is_update(room.ca(n), um))[0] for n in ("Target", "Sibling"))
    answered = _positions(driver, _is_response(turn))[0]
    assert done and last_terminal < done[0] < answered, "all:complete after every agent settled, before the answer"

    assert _result(driver, other_turn)["successfulAgents"] == 1  # the other conversation went on unaffected
    if change == "conversationAgents:remove":  # its messages went with it, in the same transaction
        assert room.ca("Target") not in {r["conversationAgentId"] for r in messages(driver, room)}
    if change == "conversations:delete":
        assert driver.call_error("messages:list", {"conversationId": room.conversation_id}).kind == "not_found"
    _no_internal_error_anywhere(driver)
    _shutdown_and_exit(driver)


# --- b. shutdown right behind processUserMessage ----------------------------------------------------------------------


def test_shutdown_in_the_same_write_as_a_turn_cancels_its_agents_and_no_provider_call_starts_after_it(
    driver: Driver, fake: FakeProvider
) -> None:
    tag = _tag()
    openai, anthropic = fake_config(driver, fake, "openai"), fake_config(driver, fake, "anthropic")
    models = [f"gpt-hang-{tag}", f"claude-hang-{tag}"]  # a call that reached the fake could never finish
    room = room_with(driver, [("Left", openai, models[0]), ("Right", anthropic, models[1])])
    turn_id, turn = _request_frame(driver, "processUserMessage", {"conversationId": room.conversation_id,
                                                                 "content": "Last words"})
    shutdown_id, shutdown = _request_frame(driver, "shutdown", {})
    driver.write_together([turn, shutdown])

    assert _answer(driver, shutdown_id) == {"jsonrpc": "2.0", "id": shutdown_id, "result": None}
    result = _result(driver, turn_id)  # the turn was read before shutdown: it answers with its result
    assert (result["totalAgents"], result["cancelledAgents"]) == (2, 2), result
    um = result["userMessageId"]
    for name in ("Left", "Right"):
        assert assert_well_formed_updates(_updates(driver, room.ca(name), um))["status"] == "cancelled"
    refused = driver.call_error("ping")
    assert (refused.code, refused.kind) == (-32014, "shutting_down")
    started = time.monotonic()
    driver.notify("exit")
    code, took = driver.exit_code_within_contract(started)
    assert code == 0 and took <= EXIT_WITHIN_SECONDS

    # A provider call starts with its agent's `thinking`: the fake cannot have seen more calls than agents that
    # were thinking before shutdown answered (counted once the process is gone, so none is still on its way).
    answered_at = _positions(driver, _is_response(shutdown_id))[0]
    thinking_before = {f["params"]["conversationAgentId"] for i, f in enumerate(driver.trace)
                       if i < answered_at and isinstance(f, dict) and f.get("method") == "agent:update"
                       and f["params"]["status"] == "thinking"}
    calls = [r for r in fake.requests if r.model in models]
    assert len(calls) <= len(thinking_before), f"{len(calls)} provider calls, {len(thinking_before)} started before"
    assert rows_in_database(driver.data_dir, "streaming") == []
    assert [row[0] for row in rows_in_database(driver.data_dir, "complete")].count(um) == 1  # the user message
    _no_internal_error_anywhere(driver)


def test_turns_of_one_conversation_sent_before_shutdown_each_answer_with_their_result(
    driver: Driver, fake: FakeProvider
) -> None:
    """Found by tests/interleaving: turns waiting on each other (each interrupts the one before) were refused as
    shutting_down, though every one was read before `shutdown`."""
    room = room_with(driver, [("Endless", fake_config(driver, fake, "openai"), ENDLESS)])
    turns = [_request_frame(driver, "processUserMessage", {"conversationId": room.conversation_id,
                                                           "content": f"Turn {n}"}) for n in range(4)]
    first = turns[0][0]
    driver.write_together([turns[0][1]])
    _wait_status(driver, room.ca("Endless"), "streaming")
    shutdown_id, shutdown = _request_frame(driver, "shutdown", {})
    driver.write_together([frame for _, frame in turns[1:]] + [shutdown])

    assert _answer(driver, shutdown_id)["result"] is None
    for request_id, _ in turns:
        response = _answer(driver, request_id)
        assert "result" in response, f"turn #{request_id} (first #{first}) was read before shutdown: {response}"
        assert {r["status"] for r in response["result"]["agentResults"]} <= {"cancelled"}
    for updates in _group_updates(driver).values():
        assert assert_well_formed_updates(updates)["status"] == "cancelled"
    _no_internal_error_anywhere(driver)


# --- c. SIGTERM while the client has stopped reading ------------------------------------------------------------------


def test_sigterm_while_stdout_is_full_exits_0_within_2_s_and_settles_every_reply_as_cancelled(
    driver: Driver, fake: FakeProvider
) -> None:
    config = fake_config(driver, fake, "openai")
    names = [f"Fast{i}" for i in range(4)]
    room = room_with(driver, [(name, config, "gpt-words-5000-pace-1") for name in names])
    driver.request("processUserMessage", {"conversationId": room.conversation_id, "content": "Flood the pipe"})
    for name in names:
        um = _wait_status(driver, room.ca(name), "streaming")["userMessageId"]
    driver.stop_reading()
    _poll(lambda: driver.bytes_in_pipe() >= driver.pipe_capacity() // 2, "stdout's pipe to fill")

    code, took = driver.exit_code_within_contract(driver.sigterm())
    assert code == 0, driver.stderr_lines[-5:]
    assert took <= EXIT_WITHIN_SECONDS, f"{took:.2f} s to exit after SIGTERM while stdout was full"
    assert integrity_check(driver.data_dir) == "ok"
    assert rows_in_database(driver.data_dir, "streaming") == [], "a reply was left streaming"
    assert rows_in_database(driver.data_dir, "interrupted") == [], "settled by the process: cancelled, not interrupted"
    replies = rows_in_database(driver.data_dir, "cancelled") + rows_in_database(driver.data_dir, "complete")
    assert um in {row[0] for row in replies}, "the acknowledged user message is kept"
    assert sum(1 for row in replies if row[0] != um and row[1] == room.conversation_id) == len(names)


def _poll(condition: Callable[[], bool], what: str) -> None:
    """Wait for a state only the OS shows (bytes waiting in a pipe); the sleep paces the check, the guard bounds it."""
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"hang guard: {what}"
        time.sleep(0.01)


# --- d. chat:cancel racing a partial save -----------------------------------------------------------------------------

CANCEL_TRIALS = 15


def test_a_cancel_right_behind_a_streaming_update_keeps_seq_text_and_row_in_step(
    driver: Driver, fake: FakeProvider
) -> None:
    config = fake_config(driver, fake, "anthropic")
    names = ("Ann", "Ben", "Cat")  # three agents: their partial saves share transactions, so saves overlap
    room = room_with(driver, [(name, config, f"claude-words-80-pace-10-{name}") for name in names])
    for trial in range(CANCEL_TRIALS):
        before = len(driver.notifications)
        turn = driver.request("processUserMessage", {"conversationId": room.conversation_id, "content": f"Go {trial}"})
        nth = trial % 4 + 1  # cancel behind the 1st, 2nd, 3rd or 4th streaming update of the turn
        driver.wait_until(functools.partial(_streamed_at_least, driver, before, nth), "streaming updates")
        cancel = driver.request("chat:cancel", {"conversationId": room.conversation_id})
        um = _result(driver, turn)["userMessageId"]
        assert _result(driver, cancel)["cancelled"] >= 0
        rows = {r["id"]: r for r in messages(driver, room) if r["replyToId"] == um}
        for name in names:
            updates = _updates(driver, room.ca(name), um)
            final = assert_well_formed_updates(updates)  # seq 1, 2, 3… with no gap; one terminal, last
            text = streamed_text(updates)
            if not text:
                assert final["status"] == "cancelled" and "messageId" not in final, final
                assert room.ca(name) not in {r["conversationAgentId"] for r in rows.values()}
                continue
            streamed_ids = {u["messageId"] for u in updates if u["status"] == "streaming"}
            assert streamed_ids == {final.get("messageId")}, (name, trial, final)
            row = rows[final["messageId"]]
            assert (row["content"], row["status"]) == (text, final["status"]), (name, trial)


def _streamed_at_least(d: Driver, since: int, count: int) -> bool:
    return sum(n["params"].get("status") == "streaming" for n in d.notifications[since:]) >= count


# --- e. retryAgent while a sibling still streams ----------------------------------------------------------------------


def test_a_retry_that_settles_while_a_sibling_streams_sends_no_all_complete_until_the_sibling_ends(
    driver: Driver, fake: FakeProvider
) -> None:
    config = fake_config(driver, fake, "openai")
    room = room_with(driver, [("Flaky", config, f"gpt-flaky-401-1-words-3-{_tag()}"), ("Sibling", config, ENDLESS)])
    turn = driver.request("processUserMessage", {"conversationId": room.conversation_id, "content": "Try twice"})
    um = _wait_status(driver, room.ca("Flaky"), "error")["userMessageId"]
    _wait_status(driver, room.ca("Sibling"), "streaming")
    retry = driver.call("chat:retryAgent", {"conversationId": room.conversation_id,
                                            "conversationAgentId": room.ca("Flaky"), "userMessageId": um})
    assert retry["status"] == "complete"
    assert _positions(driver, _is_all_complete(um)) == [], "all:complete while the sibling is still streaming"

    assert driver.call("chat:cancel", {"conversationId": room.conversation_id,
                                       "conversationAgentId": room.ca("Sibling")}) == {"cancelled": 1}
    _result(driver, turn)
    sibling_end = _positions(driver, _is_update(room.ca("Sibling"), um))
    done = _positions(driver, _is_all_complete(um))
    assert len(sibling_end) == 1 and done and all(p > sibling_end[0] for p in done), (sibling_end, done)
    _shutdown_and_exit(driver)


def test_a_turn_whose_agent_is_being_retried_answers_only_after_the_retry_settles_and_all_complete(
    driver: Driver, fake: FakeProvider
) -> None:
    """The converse of the test above (found by tests/interleaving): the turn's own agents are done while a retry
    of one of them still runs. No all:complete yet (an agent of the turn is running), so no answer yet either."""
    config = fake_config(driver, fake, "openai")
    tag = _tag()
    room = room_with(driver, [("Flaky", config, f"gpt-flaky-401-1-words-100000-pace-20-{tag}"),
                              ("Sibling", config, ENDLESS)])
    turn = driver.request("processUserMessage", {"conversationId": room.conversation_id, "content": "Try again"})
    um = _wait_status(driver, room.ca("Flaky"), "error")["userMessageId"]
    retry = driver.request("chat:retryAgent", {"conversationId": room.conversation_id,
                                               "conversationAgentId": room.ca("Flaky"), "userMessageId": um})
    driver.wait_until(lambda: len(_positions(driver, _is_update(room.ca("Flaky"), um, frozenset({"streaming"})))) > 0,
                      "the retried agent streaming")
    assert driver.call("chat:cancel", {"conversationId": room.conversation_id,
                                       "conversationAgentId": room.ca("Sibling")}) == {"cancelled": 1}
    _wait_status(driver, room.ca("Sibling"), "cancelled")
    assert driver.call("ping") == {}  # a fence: an answer the turn owed no longer has a reason to wait
    assert _positions(driver, _is_response(turn)) == [], "the turn answered while its retried agent still runs"

    assert driver.call("chat:cancel", {"conversationId": room.conversation_id,
                                       "conversationAgentId": room.ca("Flaky")}) == {"cancelled": 1}
    assert _result(driver, retry)["status"] == "cancelled"
    _result(driver, turn)
    retry_end = _positions(driver, _is_update(room.ca("Flaky"), um))[-1]
    done = [p for p in _positions(driver, _is_all_complete(um)) if p > retry_end]
    answered = _positions(driver, _is_response(turn))[0]
    assert done and done[0] < answered, "all:complete after the retry settled, then the turn's answer"
    _shutdown_and_exit(driver)


# --- f. $/cancelRequest right behind processUserMessage ---------------------------------------------------------------

FILLERS = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)  # pings between a turn and its cancel: it lands later


def test_cancel_request_in_the_same_write_as_a_turn_answers_minus_32800_and_leaves_no_agent_half_done(
    driver: Driver, fake: FakeProvider
) -> None:
    config = fake_config(driver, fake, "openai")
    room = room_with(driver, [("Hang", config, "gpt-hang"), ("Talk", config, ENDLESS)])
    trials = [(form, fillers) for form in ("content", "userMessageId") for fillers in FILLERS]
    for n, (form, fillers) in enumerate(trials):
        params: dict[str, Any] = {"conversationId": room.conversation_id}
        if form == "userMessageId":
            saved = driver.call("messages:create", {"conversationId": room.conversation_id, "role": "user",
                                                    "content": f"Saved {n}"})
            params["userMessageId"] = saved["id"]
        else:
            params["content"] = f"Sent {n}"
        request_id, frame = _request_frame(driver, "processUserMessage", params)
        pings = [_request_frame(driver, "ping", {})[1] for _ in range(fillers)]
        cancel = {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": request_id}}
        driver.write_together([frame, *pings, cancel])
        assert _answer(driver, request_id)["error"]["code"] == -32800, (form, fillers)
    _shutdown_and_exit(driver)  # every frame the process had to write is now read

    groups = _group_updates(driver)
    for updates in groups.values():
        assert updates[0]["status"] == "thinking", f"an agent update with no thinking first: {updates}"
        assert_well_formed_updates(updates)  # thinking → exactly one terminal, nothing after
    assert len(groups) <= 2 * len(trials)
    _no_internal_error_anywhere(driver)


def test_cancel_request_right_behind_an_auto_run_never_stops_a_run_it_did_not_announce(
    driver: Driver, fake: FakeProvider
) -> None:
    """Found by the release interleaving run (seed 230547515): a cancel that landed while the run saved its
    "Auto mode started" notice sent `auto:state stopped` for a run that was never `running`."""
    config = fake_config(driver, fake, "openai")
    room = room_with(driver, [("Hang", config, "gpt-hang"), ("Talk", config, ENDLESS)])
    driver.call("conversations:update", {"id": room.conversation_id, "chatMode": "auto"})
    for n, fillers in enumerate(FILLERS * 2):
        request_id, frame = _request_frame(driver, "processUserMessage", {"conversationId": room.conversation_id,
                                                                           "content": f"Sent {n}"})
        pings = [_request_frame(driver, "ping", {})[1] for _ in range(fillers)]
        cancel = {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": request_id}}
        driver.write_together([frame, *pings, cancel])
        assert _answer(driver, request_id)["error"]["code"] == -32800, fillers
    notices = [m["content"] for m in messages(driver, room) if m["role"] == "system"]  # each run's end is saved
    _shutdown_and_exit(driver)  # every frame the process had to write is now read

    states: dict[str, list[str]] = {}
    for f in driver.trace:
        if isinstance(f, dict) and f.get("method") == "auto:state":
            states.setdefault(f["params"]["runId"], []).append(f["params"]["state"])
    assert states, "no auto run started: the cancels all landed first, the test proved nothing"
    assert all(sequence == ["running", "stopped"] for sequence in states.values()), states
    started = sum(text == "Auto mode started" for text in notices)
    assert started == sum(text.startswith("Auto mode stopped") for text in notices) == len(states), notices
    _no_internal_error_anywhere(driver)


def _group_updates(d: Driver) -> dict[tuple[str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for update in d.updates():
        groups.setdefault((update["conversationAgentId"], update["userMessageId"]), []).append(update)
    return groups


# --- g. onBusy --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("on_busy", [None, "interrupt"])
def test_a_busy_conversation_rejects_with_reject_and_interrupts_by_default(
    driver: Driver, fake: FakeProvider, on_busy: str | None
) -> None:
    config = fake_config(driver, fake, "openai")
    room = room_with(driver, [("Hang", config, "gpt-hang"), ("Quick", config, "gpt-words-3")])
    first = driver.request("processUserMessage", {"conversationId": room.conversation_id, "content": "First"})
    first_um = _wait_status(driver, room.ca("Hang"), "thinking")["userMessageId"]

    refused = driver.call_error("processUserMessage", {"conversationId": room.conversation_id,
                                                       "content": "Rejected words", "onBusy": "reject"})
    assert (refused.code, refused.kind) == (-32014, "busy")
    assert "Rejected words" not in {r["content"] for r in messages(driver, room)}, "a rejected send saved nothing"

    params = {"conversationId": room.conversation_id, "content": "Second", **({"onBusy": on_busy} if on_busy else {})}
    second = driver.request("processUserMessage", params)
    result = _result(driver, first)  # the interrupted turn still answers with its result
    statuses = {r["conversationAgentId"]: r["status"] for r in result["agentResults"]}
    assert statuses[room.ca("Hang")] == "cancelled"
    second_um = _wait_status_of_turn(driver, room.ca("Hang"), "thinking", first_um)
    first_ended = _positions(driver, _is_update(room.ca("Hang"), first_um))
    second_started = _positions(driver, lambda f: f.get("method") == "agent:update"
                                and f["params"]["userMessageId"] == second_um)
    assert first_ended and first_ended[0] < second_started[0], "the new turn starts after the old one is cancelled"
    driver.call("chat:cancel", {"conversationId": room.conversation_id})
    assert _result(driver, second)["userMessageId"] == second_um


def _wait_status_of_turn(d: Driver, ca: str, status: str, not_um: str) -> str:
    return d.wait_notification(lambda n: n["method"] == "agent:update" and n["params"]["conversationAgentId"] == ca
                               and n["params"]["status"] == status
                               and n["params"]["userMessageId"] != not_um)["params"]["userMessageId"]


# --- h. concurrency on one llm config ---------------------------------------------------------------------------------


def test_five_agents_on_one_llm_config_start_together_by_default(driver: Driver, fake: FakeProvider) -> None:
    config = fake_config(driver, fake, "openai")
    assert config["maxConcurrency"] == 8
    model = f"gpt-gate-5-words-3-{_tag()}"  # the fake answers only once five of these are open at once
    room = room_with(driver, [(f"Gate{i}", config, model) for i in range(5)])
    result = driver.call("processUserMessage", {"conversationId": room.conversation_id, "content": "Together"})
    assert result["successfulAgents"] == 5, [r.get("errorType") for r in result["agentResults"]]
    assert fake.max_concurrent >= 5
    assert [u for u in driver.updates() if u["status"] == "queued"] == []


def test_with_max_concurrency_1_every_agent_past_the_first_is_queued_right_after_thinking(
    driver: Driver, fake: FakeProvider
) -> None:
    config = fake_config(driver, fake, "anthropic")
    assert driver.call("llmConfigs:update", {"id": config["id"], "maxConcurrency": 1})["maxConcurrency"] == 1
    names, model = ("One", "Two", "Three"), f"claude-hang-{_tag()}"
    room = room_with(driver, [(name, config, model) for name in names])  # the slot's holder never lets go
    turn = driver.request("processUserMessage", {"conversationId": room.conversation_id, "content": "Queue up"})
    driver.wait_until(lambda: sum(u["status"] == "queued" for u in driver.updates()) >= 2, "two queued updates")
    driver.call("chat:cancel", {"conversationId": room.conversation_id})
    um = _result(driver, turn)["userMessageId"]
    statuses = {name: [u["status"] for u in _updates(driver, room.ca(name), um)] for name in names}
    assert sorted(statuses.values()) == sorted([["thinking", "cancelled"], ["thinking", "queued", "cancelled"],
                                                ["thinking", "queued", "cancelled"]]), json.dumps(statuses)
    # A call that reached the fake hangs until cancelled, so two calls would have been open at once. (The fake's
    # own max_concurrent is shared with earlier tests' connections still closing: not used here.)
    assert len(requests_for(fake, model)) <= 1  # 0 when the first call was cancelled before it reached the fake
