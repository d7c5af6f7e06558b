"""Conversation modes over stdio (CONTRACT §5 "Which agents answer", §5b auto mode), against the fake provider
server (fast, with SKIP / @Name / barrier behaviours) and the demo provider.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fake_provider import FakeProvider
from tests.sidecar_client import Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import (
    Room,
    ask,
    assert_well_formed_updates,
    demo_config,
    fake_config,
    make_agent,
    messages,
    room_with,
)

fake, sidecar = chat_setup.fake, chat_setup.sidecar  # the shared fixtures

def _set_mode(sidecar: Sidecar, room: Room, mode: str, **auto: Any) -> None:
    params: dict[str, Any] = {"id": room.conversation_id, "chatMode": mode}
    if auto:
        params["autoSettings"] = auto
    sidecar.call("conversations:update", params)


def _speakers(result: dict[str, Any], room: Room) -> list[str]:
    return [room.name_of(r["conversationAgentId"]) for r in result["agentResults"]]


def _states(sidecar: Sidecar) -> list[dict[str, Any]]:
    return [n["params"] for n in sidecar.notifications if n["method"] == "auto:state"]


def _all_completes(sidecar: Sidecar, user_message_id: str) -> int:
    return sum(
        1 for n in sidecar.notifications
        if n["method"] == "all:complete" and n["params"]["userMessageId"] == user_message_id
    )


def _speaker_turns(sidecar: Sidecar, run_id: str) -> list[list[dict[str, Any]]]:
    """The updates of each speaker turn of a run, in the order the turns started."""
    turns: list[list[dict[str, Any]]] = []
    for update in sidecar.updates():
        if update.get("runId") != run_id:
            continue
        if update["status"] == "thinking":
            turns.append([update])
        else:
            owner = next(t for t in reversed(turns) if t[0]["conversationAgentId"] == update["conversationAgentId"])
            owner.append(update)
    return turns


# --- round-robin ------------------------------------------------------------------------------------------------


def test_round_robin_answers_with_one_agent_per_message_in_rotation_and_the_rotation_survives_a_restart(
    spawn_sidecar: Callable[..., Sidecar], fake: FakeProvider, tmp_path: Path
) -> None:
    first = spawn_sidecar(tmp_path / "data")
    config = fake_config(first, fake, "openai")
    room = room_with(first, [("Ann", config, "gpt-ok"), ("Ben", config, "gpt-ok"), ("Cy", config, "gpt-ok")])
    _set_mode(first, room, "round-robin")
    assert [_speakers(ask(first, room, f"m{i}"), room) for i in range(4)] == [["Ann"], ["Ben"], ["Cy"], ["Ann"]]
    assert first.stop() == 0
    second = spawn_sidecar(tmp_path / "data")
    assert _speakers(ask(second, room, "after the restart"), room) == ["Ben"]


def test_round_robin_does_not_move_on_when_the_agent_fails(sidecar: Sidecar, fake: FakeProvider) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Ann", config, "gpt-ok")])
    ben = make_agent(sidecar, "Ben", config, "gpt-err-401")  # every call of Ben's fails
    sidecar.call("conversationAgents:add", {"conversationId": room.conversation_id, "agentId": ben["id"]})
    _set_mode(sidecar, room, "round-robin")
    assert [r["status"] for r in ask(sidecar, room, "one")["agentResults"]] == ["complete"]  # Ann
    failed = ask(sidecar, room, "two")["agentResults"]
    again = ask(sidecar, room, "three")["agentResults"]
    assert [(r["agentName"], r["status"]) for r in failed] == [("Ben", "error")]
    assert [(r["agentName"], r["status"]) for r in again] == [("Ben", "error")]


# --- auto mode: stop rules --------------------------------------------------------------------------------------


def test_an_auto_run_goes_on_until_every_agent_skips_in_one_round(sidecar: Sidecar, fake: FakeProvider) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Ann", config, "gpt-a-skipafter-2"), ("Ben", config, "gpt-b-skipafter-1")])
    _set_mode(sidecar, room, "auto")
    result = ask(sidecar, room, "Talk among yourselves")
    auto = result["auto"]
    assert auto["stopReason"] == "all_skipped"
    # Ann, Ben | Ann, Ben(SKIP) | Ann(SKIP), Ben(SKIP): the third round is skipped by everyone.
    assert [(r["agentName"], r["status"]) for r in result["agentResults"]] == [
        ("Ann", "complete"), ("Ben", "complete"), ("Ann", "complete"), ("Ben", "skipped"),
        ("Ann", "skipped"), ("Ben", "skipped"),
    ]
    assert (auto["replies"], auto["rounds"]) == (3, 3)
    assert [(s["state"], s.get("reason"), s["replies"]) for s in _states(sidecar)] == [
        ("running", None, 0), ("stopped", "all_skipped", 3),
    ]
    assert _all_completes(sidecar, result["userMessageId"]) == 1
    rows = messages(sidecar, room)
    contents = [row["content"] for row in rows if row["role"] == "system"]
    assert contents[0] == "Auto mode started" and contents[-1] == "Auto mode stopped: every agent skipped their turn"
    assert contents.count("Ann skipped their turn") == 1 and contents.count("Ben skipped their turn") == 2
    assert not any(row["role"] == "agent" and row["content"].strip().upper() == "SKIP" for row in rows)
    for turn in _speaker_turns(sidecar, auto["runId"]):
        terminal = assert_well_formed_updates(turn)
        assert {u["userMessageId"] for u in turn} == {result["userMessageId"]}
        assert all(u["round"] >= 1 for u in turn)
        if terminal["status"] == "skipped":
            assert next(r for r in rows if r["id"] == terminal["messageId"])["role"] == "system"


def test_an_auto_run_stops_at_max_messages(sidecar: Sidecar, fake: FakeProvider) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Ann", config, "gpt-ok"), ("Ben", config, "gpt-ok")])
    _set_mode(sidecar, room, "auto", maxMessages=3)
    result = ask(sidecar, room, "Go")
    assert result["auto"]["stopReason"] == "max_messages"
    assert result["auto"]["replies"] == 3 == result["successfulAgents"]
    replies = [row for row in messages(sidecar, room) if row["role"] == "agent"]
    assert len(replies) == 3
    # Each speaker answers the message that was the latest when it started: a chain, not three replies to one.
    assert len({row["replyToId"] for row in replies}) == 3


def test_an_auto_run_stops_when_an_agent_fails_after_its_retries(sidecar: Sidecar, fake: FakeProvider) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Ann", config, "gpt-ok"), ("Ben", config, "gpt-err-401")])
    _set_mode(sidecar, room, "auto")
    result = ask(sidecar, room, "Go")
    assert result["auto"]["stopReason"] == "error"
    assert [(r["agentName"], r["status"]) for r in result["agentResults"]] == [("Ann", "complete"), ("Ben", "error")]


def test_chat_cancel_stops_an_auto_run_and_a_new_message_interrupts_it(sidecar: Sidecar, fake: FakeProvider) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Ann", config, "gpt-words-200-pace-20"), ("Ben", config, "gpt-words-200-pace-20")])
    _set_mode(sidecar, room, "auto")
    first = sidecar.request("processUserMessage", {"conversationId": room.conversation_id, "content": "one"})
    sidecar.wait_notification(lambda n: n["method"] == "agent:update" and n["params"]["status"] == "streaming")
    assert sidecar.call("chat:cancel", {"conversationId": room.conversation_id})["cancelled"] == 1
    cancelled = sidecar.response(first)["result"]
    assert cancelled["auto"]["stopReason"] == "cancelled"

    second = sidecar.request("processUserMessage", {"conversationId": room.conversation_id, "content": "two"})
    sidecar.wait_notification(
        lambda n: n["method"] == "agent:update" and n["params"]["status"] == "streaming"
        and n["params"].get("runId") != cancelled["auto"]["runId"]
    )
    _set_mode(sidecar, room, "auto", maxMessages=1)  # a settings change alone does not stop the run
    third = sidecar.request("processUserMessage", {"conversationId": room.conversation_id, "content": "three"})
    assert sidecar.response(second)["result"]["auto"]["stopReason"] == "user_message"
    assert sidecar.response(third)["result"]["auto"]["stopReason"] == "max_messages"
    reasons = [s.get("reason") for s in _states(sidecar) if s["state"] == "stopped"]
    assert reasons == ["cancelled", "user_message", "max_messages"]


def test_shutdown_stops_an_auto_run_with_reason_shutdown_and_keeps_its_text(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Ann", config, "gpt-words-300-pace-20"), ("Ben", config, "gpt-words-4")])
    _set_mode(sidecar, room, "auto")
    run = sidecar.request("processUserMessage", {"conversationId": room.conversation_id, "content": "Talk"})
    streaming = sidecar.wait_notification(
        lambda n: n["method"] == "agent:update" and n["params"]["status"] == "streaming"
    )["params"]
    shutdown = sidecar.request("shutdown")
    assert sidecar.response(shutdown)["result"] is None
    answer = sidecar.response(run)
    stopped = [s for s in _states(sidecar) if s["state"] == "stopped"]
    assert [s["reason"] for s in stopped] == ["shutdown"]
    assert answer["result"]["auto"]["stopReason"] == "shutdown"  # a request in flight still answers (§2)
    ann = [u for u in sidecar.updates(room.ca("Ann")) if u.get("runId") == streaming["runId"]]
    assert ann[-1]["status"] == "cancelled" and ann[-1]["messageId"] == streaming["messageId"]
    sidecar.notify("exit")
    assert sidecar.wait_exit() == 0


def test_switching_the_mode_stops_a_running_auto_run(sidecar: Sidecar, fake: FakeProvider) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Ann", config, "gpt-words-200-pace-20")])
    _set_mode(sidecar, room, "auto")
    request = sidecar.request("processUserMessage", {"conversationId": room.conversation_id, "content": "one"})
    sidecar.wait_notification(lambda n: n["method"] == "agent:update" and n["params"]["status"] == "streaming")
    _set_mode(sidecar, room, "manual")
    assert sidecar.response(request)["result"]["auto"]["stopReason"] == "cancelled"


# --- auto mode: who speaks, and what each speaker sees ---------------------------------------------------------


def test_a_name_in_the_latest_message_moves_that_agent_to_the_front(sidecar: Sidecar, fake: FakeProvider) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Ann", config, "gpt-a-mention-Cy"), ("Ben", config, "gpt-b-ok"),
                               ("Cy", config, "gpt-c-ok")])
    _set_mode(sidecar, room, "auto", maxMessages=4)
    # The name comes late in the message: the fake quotes only its first 40 characters back.
    result = ask(sidecar, room, "Let us hear from everyone in the room, starting with @ben")
    # Ben first (named by the user), then the rotation after him: Cy, Ann; Ann names @Cy, who goes before Ben.
    assert _speakers(result, room) == ["Ben", "Cy", "Ann", "Cy"]


def test_each_sequential_speaker_sees_everything_said_before_it(sidecar: Sidecar, fake: FakeProvider) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Ann", config, "gpt-seen-a"), ("Ben", config, "gpt-seen-b")])
    _set_mode(sidecar, room, "auto", maxMessages=2)
    fake.reset()
    ask(sidecar, room, "Hello both")
    ann_request, ben_request = (r.body for r in fake.requests)
    ann_reply = next(row for row in messages(sidecar, room) if row["role"] == "agent")
    assert ann_request["messages"][-1] == {"role": "user", "content": "Hello both"}
    assert ben_request["messages"][-1]["content"].endswith(f"Ann: {ann_reply['content']}")
    for body in (ann_request, ben_request):
        system = body["messages"][0]["content"]
        assert "auto mode" in system and "exactly SKIP" in system and "@" in system


def test_rounds_style_runs_every_agent_of_a_round_at_once_on_the_same_history(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    # A three-way barrier opens only when three calls are open at once: the round is concurrent, not timed.
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [(name, config, f"gpt-{name}-gate-3-skipafter-1") for name in ("Ann", "Ben", "Cy")])
    _set_mode(sidecar, room, "auto", style="rounds")
    fake.reset()
    result = ask(sidecar, room, "All at once")
    assert result["auto"]["stopReason"] == "all_skipped"
    assert [r["status"] for r in result["agentResults"]] == ["complete"] * 3 + ["skipped"] * 3
    assert fake.max_concurrent >= 3
    first_round = fake.requests[:3]
    assert len({str(r.body["messages"][1:]) for r in first_round}) == 1  # the same history for everyone
    rounds = {u["round"] for u in sidecar.updates() if u.get("runId") == result["auto"]["runId"]}
    assert rounds == {1, 2}


def test_a_rounds_run_never_goes_past_max_messages_its_last_round_is_cut_short(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [(name, config, "gpt-words-4") for name in ("Ann", "Ben", "Cy")])
    _set_mode(sidecar, room, "auto", style="rounds", maxMessages=5)
    result = ask(sidecar, room, "Go")
    assert result["auto"]["stopReason"] == "max_messages"
    assert result["auto"]["replies"] == 5 and result["auto"]["rounds"] == 2
    # Round 1: all three; round 2: the first two in display order, the only replies left.
    assert _speakers(result, room) == ["Ann", "Ben", "Cy", "Ann", "Ben"]
    replies = [r for r in messages(sidecar, room) if r["role"] == "agent"]
    assert len(replies) == 5 and {r["status"] for r in replies} == {"complete"}


def test_rounds_cut_short_by_max_messages_hear_the_agents_that_have_not_skipped_and_end_when_all_have(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    """Found by the release interleaving run (seed 3030189446): with one reply left, a round of one was always the
    first agent in display order; when it skipped, no reply was saved and the run asked it again, for ever."""
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Shy", config, "gpt-skip"), ("Ann", config, "gpt-words-4")])
    _set_mode(sidecar, room, "auto", style="rounds", maxMessages=1)
    result = ask(sidecar, room, "Go")
    assert (result["auto"]["stopReason"], result["auto"]["replies"]) == ("max_messages", 1), result["auto"]
    assert _speakers(result, room) == ["Shy", "Ann"]  # Shy skipped its round of one; Ann was heard next

    quiet = room_with(sidecar, [(name, config, "gpt-skip") for name in ("Shy", "Mum")])
    _set_mode(sidecar, quiet, "auto", style="rounds", maxMessages=1)
    result = ask(sidecar, quiet, "Anyone?")
    assert (result["auto"]["stopReason"], result["auto"]["replies"]) == ("all_skipped", 0), result["auto"]
    assert _speakers(result, quiet) == ["Shy", "Mum"]


def test_chat_start_auto_continues_from_the_history_and_refuses_a_conversation_not_in_auto_mode(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Ann", config, "gpt-ok")])
    refused = sidecar.call_error("chat:startAuto", {"conversationId": room.conversation_id})
    assert (refused.code, refused.kind) == (-32012, "validation")
    _set_mode(sidecar, room, "auto", maxMessages=1)
    result = sidecar.call("chat:startAuto", {"conversationId": room.conversation_id})
    started = next(row for row in messages(sidecar, room) if row["id"] == result["userMessageId"])
    assert (started["role"], started["content"]) == ("system", "Auto mode started")
    assert result["auto"]["stopReason"] == "max_messages"


def test_the_demo_provider_runs_a_whole_auto_conversation_that_ends_by_itself(sidecar: Sidecar) -> None:
    demo = demo_config(sidecar)
    room = room_with(sidecar, [("Ann", demo, "demo"), ("Ben", demo, "demo"), ("Sky", demo, "demo-skip")])
    _set_mode(sidecar, room, "auto")
    result = ask(sidecar, room, "What should we build first?")
    assert result["auto"]["stopReason"] == "all_skipped"
    assert result["auto"]["replies"] == 4  # Ann and Ben speak twice, then skip; Sky always skips
    replies = [row["content"] for row in messages(sidecar, room) if row["role"] == "agent"]
    assert all('"What should we build first?"' in reply for reply in replies)  # the last *user* message
