"""Controlling turns over stdio: `chat:cancel`, `$/cancelRequest`, `chat:retryAgent`, and turns on existing messages.

Synchronisation is on the sidecar's own words: a test acts once it has seen the update it needs.
"""

from __future__ import annotations

from typing import Any

from tests.fake_provider import FakeProvider
from tests.sidecar_client import Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import (
    Room,
    assert_well_formed_updates,
    fake_config,
    frames,
    messages,
    requests_for,
    result_for,
    room_with,
    streamed_text,
    turn_updates,
)

fake, sidecar = chat_setup.fake, chat_setup.sidecar  # the shared fixtures

LONG = "gpt-words-200-pace-20"  # about four seconds of text: always still streaming when cancelled


def _start_turn(sidecar: Sidecar, room: Room, content: str = "Go on") -> Any:
    return sidecar.request("processUserMessage", {"conversationId": room.conversation_id, "content": content})


def _wait_status(sidecar: Sidecar, room: Room, name: str, status: str) -> dict[str, Any]:
    ca = room.ca(name)
    return sidecar.wait_notification(lambda n: n["method"] == "agent:update"
                                     and n["params"]["conversationAgentId"] == ca and n["params"]["status"] == status)


def _turn_result(sidecar: Sidecar, request_id: Any) -> dict[str, Any]:
    response = sidecar.response(request_id)
    assert "result" in response, response
    return response["result"]


# --- chat:cancel -------------------------------------------------------------------------------------------------


def test_cancelling_one_agent_keeps_its_partial_text_and_leaves_the_others_alone(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Stay", config, "gpt-words-5-pace-10"), ("Stop", config, LONG)])
    turn = _start_turn(sidecar, room)
    _wait_status(sidecar, room, "Stop", "streaming")
    assert sidecar.call("chat:cancel", {"conversationId": room.conversation_id,
                                        "conversationAgentId": room.ca("Stop")}) == {"cancelled": 1}
    result = _turn_result(sidecar, turn)
    assert (result["successfulAgents"], result["cancelledAgents"]) == (1, 1)

    updates = turn_updates(sidecar, result["userMessageId"], room.ca("Stop"))
    final = assert_well_formed_updates(updates)
    partial = next(r for r in messages(sidecar, room) if r["conversationAgentId"] == room.ca("Stop"))
    assert final["status"] == "cancelled" and final["messageId"] == partial["id"]
    assert result_for(result, room.ca("Stop"))["messageId"] == partial["id"]
    assert partial["status"] == "cancelled" and partial["content"] == streamed_text(updates) != ""
    assert assert_well_formed_updates(turn_updates(sidecar, result["userMessageId"], room.ca("Stay")))[
        "status"] == "complete"


def test_cancelling_a_conversation_stops_every_agent_in_flight(sidecar: Sidecar, fake: FakeProvider) -> None:
    config = fake_config(sidecar, fake, "anthropic")
    room = room_with(sidecar, [("Quiet", config, "claude-hang"), ("Loud", config, "claude-words-200-pace-20")])
    turn = _start_turn(sidecar, room)
    _wait_status(sidecar, room, "Quiet", "thinking")
    _wait_status(sidecar, room, "Loud", "streaming")
    assert sidecar.call("chat:cancel", {"conversationId": room.conversation_id}) == {"cancelled": 2}
    result = _turn_result(sidecar, turn)
    assert (result["totalAgents"], result["cancelledAgents"]) == (2, 2)
    quiet = assert_well_formed_updates(turn_updates(sidecar, result["userMessageId"], room.ca("Quiet")))
    assert quiet["status"] == "cancelled" and "messageId" not in quiet  # no text had arrived: no row
    assert [r["role"] for r in messages(sidecar, room)] == ["user", "agent"]


def test_cancelling_with_nothing_in_flight_cancels_nothing(sidecar: Sidecar, fake: FakeProvider) -> None:
    room = room_with(sidecar, [("Idle", fake_config(sidecar, fake, "openai"), "gpt-ok")])
    assert sidecar.call("chat:cancel", {"conversationId": room.conversation_id}) == {"cancelled": 0}


def test_cancel_request_on_a_turn_answers_minus_32800_after_every_agent_settles(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Hanging", config, "gpt-hang"), ("Talking", config, LONG)])
    turn = _start_turn(sidecar, room)
    _wait_status(sidecar, room, "Hanging", "thinking")
    _wait_status(sidecar, room, "Talking", "streaming")
    sidecar.notify("$/cancelRequest", {"id": turn})
    response = sidecar.response(turn)
    assert response["error"]["code"] == -32800

    for name in ("Hanging", "Talking"):
        assert assert_well_formed_updates(sidecar.updates(room.ca(name)))["status"] == "cancelled"
    sent = frames(sidecar)
    done = [i for i, f in enumerate(sent) if f.get("method") == "all:complete"]
    answered = next(i for i, f in enumerate(sent) if f.get("id") == turn)
    assert len(done) == 1 and done[0] < answered
    partial = next(r for r in messages(sidecar, room) if r["role"] == "agent")
    assert partial["status"] == "cancelled" and partial["content"]


# --- chat:retryAgent ---------------------------------------------------------------------------------------------


def _retry(sidecar: Sidecar, room: Room, name: str, user_message_id: str) -> dict[str, Any]:
    return sidecar.call("chat:retryAgent", {"conversationId": room.conversation_id,
                                            "conversationAgentId": room.ca(name), "userMessageId": user_message_id})


def test_retrying_a_failed_agent_replaces_its_notice_with_a_fresh_reply(sidecar: Sidecar, fake: FakeProvider) -> None:
    model = "gpt-flaky-401-1-words-4"  # the first call is refused, the next one answers
    room = room_with(sidecar, [("Again", fake_config(sidecar, fake, "openai"), model)])
    turn = _turn_result(sidecar, _start_turn(sidecar, room))
    assert result_for(turn, room.ca("Again"))["errorType"] == "auth"
    user_id = turn["userMessageId"]
    notice = next(r for r in messages(sidecar, room) if r["role"] == "system")

    already = len(sidecar.updates(room.ca("Again")))
    outcome = _retry(sidecar, room, "Again", user_id)
    assert outcome["status"] == "complete"
    rerun = sidecar.updates(room.ca("Again"))[already:]
    final = assert_well_formed_updates(rerun)  # seq starts again at 1
    rows = messages(sidecar, room)
    assert notice["id"] not in {r["id"] for r in rows}
    assert [(r["role"], r["status"], r["replyToId"]) for r in rows] == [
        ("user", "complete", None), ("agent", "complete", user_id)]
    assert rows[1]["id"] == final["messageId"] == outcome["messageId"]
    assert streamed_text(rerun) == rows[1]["content"]
    assert len(requests_for(fake, model)) == 2
    assert [f["params"]["userMessageId"] for f in frames(sidecar) if f.get("method") == "all:complete"] == [
        user_id, user_id]


def test_retrying_a_cancelled_agent_deletes_its_partial_reply_and_answers_from_the_same_snapshot(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    config = fake_config(sidecar, fake, "anthropic")
    # 8 s of text: the cancel lands while it streams even on a loaded machine.
    room = room_with(sidecar, [("Cut", config, "claude-words-400-pace-20"), ("Peer", config, "claude-peer-words-3")])
    turn = _start_turn(sidecar, room, "Snapshot please")
    _wait_status(sidecar, room, "Cut", "streaming")
    sidecar.call("chat:cancel", {"conversationId": room.conversation_id, "conversationAgentId": room.ca("Cut")})
    result = _turn_result(sidecar, turn)
    partial = result_for(result, room.ca("Cut"))["messageId"]

    outcome = _retry(sidecar, room, "Cut", result["userMessageId"])
    assert outcome["status"] == "complete"
    rows = messages(sidecar, room)
    assert partial not in {r["id"] for r in rows}
    assert len([r for r in rows if r["conversationAgentId"] == room.ca("Cut")]) == 1
    # The peer's reply to the same message is not in the retried agent's context.
    retried_body = requests_for(fake, "claude-words-400-pace-20")[-1].body
    assert retried_body["messages"] == [{"role": "user", "content": "Snapshot please"}]


def test_retrying_an_agent_that_already_answered_is_a_conflict(sidecar: Sidecar, fake: FakeProvider) -> None:
    room = room_with(sidecar, [("Done", fake_config(sidecar, fake, "openai"), "gpt-words-2")])
    result = _turn_result(sidecar, _start_turn(sidecar, room))
    error = sidecar.call_error("chat:retryAgent", {"conversationId": room.conversation_id,
                                                   "conversationAgentId": room.ca("Done"),
                                                   "userMessageId": result["userMessageId"]})
    assert (error.code, error.kind) == (-32011, "conflict")


def test_retrying_an_agent_that_is_still_answering_is_busy(sidecar: Sidecar, fake: FakeProvider) -> None:
    room = room_with(sidecar, [("Busy", fake_config(sidecar, fake, "openai"), "gpt-hang")])
    turn = _start_turn(sidecar, room)
    user_id = _wait_status(sidecar, room, "Busy", "thinking")["params"]["userMessageId"]
    error = sidecar.call_error("chat:retryAgent", {"conversationId": room.conversation_id,
                                                   "conversationAgentId": room.ca("Busy"), "userMessageId": user_id})
    assert (error.code, error.kind) == (-32014, "busy")
    sidecar.call("chat:cancel", {"conversationId": room.conversation_id})
    assert _turn_result(sidecar, turn)["cancelledAgents"] == 1


def test_two_retries_of_one_agent_sent_together_run_it_once(sidecar: Sidecar, fake: FakeProvider) -> None:
    model = "gpt-flaky-503-1-retryafter-31-words-3"  # fails at once (wait too long), answers when retried
    room = room_with(sidecar, [("Twice", fake_config(sidecar, fake, "openai"), model)])
    user_id = _turn_result(sidecar, _start_turn(sidecar, room))["userMessageId"]
    params = {"conversationId": room.conversation_id, "conversationAgentId": room.ca("Twice"),
              "userMessageId": user_id}
    first, second = sidecar.request("chat:retryAgent", params), sidecar.request("chat:retryAgent", params)
    responses = [sidecar.response(first), sidecar.response(second)]
    assert sorted("result" in r for r in responses) == [False, True], responses
    refused = next(r for r in responses if "error" in r)
    assert refused["error"]["data"]["kind"] in ("busy", "conflict")
    assert len([r for r in messages(sidecar, room) if r["role"] == "agent"]) == 1
    assert len(requests_for(fake, model)) == 2


# --- turns on existing messages ----------------------------------------------------------------------------------


def test_a_turn_can_answer_an_existing_user_message_without_saving_it_again(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    room = room_with(sidecar, [("Reader", fake_config(sidecar, fake, "openai"), "gpt-words-3")])
    saved = sidecar.call("messages:create", {"conversationId": room.conversation_id, "role": "user",
                                             "content": "Already here"})
    result = sidecar.call("processUserMessage", {"conversationId": room.conversation_id, "userMessageId": saved["id"]})
    assert (result["userMessageId"], result["successfulAgents"]) == (saved["id"], 1)
    rows = messages(sidecar, room)
    assert [(r["role"], r["replyToId"]) for r in rows] == [("user", None), ("agent", saved["id"])]


def test_a_system_message_starts_a_continue_turn_that_the_model_never_sees(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    model = "claude-cont-words-3"
    room = room_with(sidecar, [("Cont", fake_config(sidecar, fake, "anthropic"), model)])
    _turn_result(sidecar, _start_turn(sidecar, room, "Start"))
    note = sidecar.call("messages:create", {"conversationId": room.conversation_id, "role": "system",
                                            "content": "Keep going"})
    result = sidecar.call("processUserMessage", {"conversationId": room.conversation_id, "userMessageId": note["id"]})
    assert (result["userMessageId"], result["successfulAgents"]) == (note["id"], 1)
    rows = messages(sidecar, room)
    assert [(r["role"], r["replyToId"]) for r in rows][-1] == ("agent", note["id"])
    body = requests_for(fake, model)[-1].body
    assert "Keep going" not in str(body)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]  # ends on a user turn
