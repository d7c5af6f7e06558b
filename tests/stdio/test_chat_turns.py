"""Whole turns over the real subprocess against the fake OpenAI/Anthropic server (CONTRACT §5–§7).

Every test synchronises on what the sidecar says (the response, which comes after `all:complete`); the fake's
model names pick each agent's behaviour.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fake_provider import FakeProvider
from tests.sidecar_client import Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import (
    API_KEY,
    Room,
    ask,
    assert_well_formed_updates,
    closed_port_config,
    demo_config,
    fake_config,
    frames,
    make_agent,
    make_room,
    messages,
    requests_for,
    result_for,
    room_with,
    streamed_text,
    turn_updates,
)

fake, sidecar = chat_setup.fake, chat_setup.sidecar  # the shared fixtures

ERROR_NOTICE = re.compile(r"^Agent ([^:]+): ")


def _single_agent_turn(
    sidecar: Sidecar, fake: FakeProvider, provider: str, model: str, name: str = "Solo", **extra: Any
) -> tuple[Room, dict[str, Any], list[dict[str, Any]]]:
    """One agent, one turn: (room, its AgentResult, its updates)."""
    room = room_with(sidecar, [(name, fake_config(sidecar, fake, provider), model)], **extra)
    result = ask(sidecar, room, "Hello there")
    updates = turn_updates(sidecar, result["userMessageId"], room.ca(name))
    return room, result_for(result, room.ca(name)), updates


# --- a full turn -----------------------------------------------------------------------------------------------


def test_five_mixed_agents_fan_out_and_each_settles_once_in_its_own_time(sidecar: Sidecar, fake: FakeProvider) -> None:
    openai, anthropic = fake_config(sidecar, fake, "openai"), fake_config(sidecar, fake, "anthropic")
    room = room_with(sidecar, [
        ("Ada", openai, "gpt-words-8-pace-10"),
        ("Bo", anthropic, "claude-words-6-pace-10"),
        ("Cy", openai, "gpt-words-3"),
        ("Slow", anthropic, "claude-slow-2-words-4"),  # two seconds before its first byte
        ("Failing", openai, "gpt-err-401"),
    ])
    result = ask(sidecar, room, "What should we build first?")
    user_id = result["userMessageId"]

    assert (result["totalAgents"], result["successfulAgents"], result["failedAgents"], result["cancelledAgents"]) == (
        5, 4, 1, 0)
    rows = messages(sidecar, room)
    assert [r["id"] for r in rows if r["role"] == "user"] == [user_id]
    for name in ("Ada", "Bo", "Cy", "Slow"):
        updates = turn_updates(sidecar, user_id, room.ca(name))
        final = assert_well_formed_updates(updates)
        assert final["status"] == "complete"
        replies = [r for r in rows if r["conversationAgentId"] == room.ca(name)]
        assert len(replies) == 1 and replies[0]["status"] == "complete" and replies[0]["replyToId"] == user_id
        assert replies[0]["id"] == final["messageId"] == result_for(result, room.ca(name))["messageId"]
        assert streamed_text(updates) == replies[0]["content"] != ""
        assert {u["messageId"] for u in updates if u["status"] == "streaming"} == {replies[0]["id"]}

    failed = assert_well_formed_updates(turn_updates(sidecar, user_id, room.ca("Failing")))
    assert (failed["status"], failed["errorType"], failed["retryable"]) == ("error", "auth", False)
    outcome = result_for(result, room.ca("Failing"))
    assert (outcome["status"], outcome["errorType"], outcome["retryable"]) == ("error", "auth", False)
    notices = [r for r in rows if r["role"] == "system"]
    assert len(notices) == 1 and notices[0]["id"] == failed["messageId"] and notices[0]["replyToId"] == user_id
    match = ERROR_NOTICE.match(notices[0]["content"])
    assert match and match.group(1) == "Failing"
    assert notices[0]["content"] == f"Agent Failing: {failed['error']}"
    assert not [r for r in rows if r["conversationAgentId"] == room.ca("Failing")]
    assert len(requests_for(fake, "gpt-err-401")) == 1, "auth failures are not retried"

    # Order on the wire: every `complete` before all:complete, then the response. (Which agent finishes last is
    # a race between Slow's delay and the others' streams on a loaded machine: not asserted.)
    sent = frames(sidecar)
    completes = [f["params"]["agentName"] for f in sent
                 if f.get("method") == "agent:update" and f["params"]["status"] == "complete"]
    assert sorted(completes) == ["Ada", "Bo", "Cy", "Slow"]
    turn_frames = [f for f in sent if f.get("method") in ("agent:update", "all:complete") or "result" in f]
    all_complete = [i for i, f in enumerate(turn_frames) if f.get("method") == "all:complete"]
    response = next(i for i, f in enumerate(turn_frames) if f.get("result", {}) == result)
    assert all_complete == [response - 1]
    assert turn_frames[all_complete[0]]["params"] == {"conversationId": room.conversation_id, "userMessageId": user_id}


def test_a_completed_reply_carries_usage_in_its_update_its_result_and_its_row(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    room, outcome, updates = _single_agent_turn(sidecar, fake, "anthropic", "claude-words-5")
    final = assert_well_formed_updates(updates)
    assert final["usage"]["outputTokens"] == 5 and final["usage"]["inputTokens"] > 0
    assert final["usage"]["firstTokenMs"] <= final["usage"]["totalMs"]
    assert outcome["usage"] == final["usage"]
    row = next(r for r in messages(sidecar, room) if r["role"] == "agent")
    assert row["usage"]["outputTokens"] == 5


# --- parallelism, without timing -------------------------------------------------------------------------------


def test_five_agents_are_called_at_once_so_a_five_way_barrier_opens(sidecar: Sidecar, fake: FakeProvider) -> None:
    # The fake holds every gate-5 response until five are open together: sequential calls would get 500s.
    openai, anthropic = fake_config(sidecar, fake, "openai"), fake_config(sidecar, fake, "anthropic")
    configs = [openai, anthropic, openai, anthropic, openai]
    room = room_with(sidecar, [(f"Gate{i}", config, "gate-5-words-3") for i, config in enumerate(configs)])
    result = ask(sidecar, room, "All together now")
    assert result["successfulAgents"] == 5, [r.get("errorType") for r in result["agentResults"]]
    assert fake.max_concurrent >= 5
    assert len(fake.requests) == 5


def test_five_agents_on_a_config_limited_to_four_calls_never_have_more_than_four_open(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    # A four-way barrier opens only if four calls are open at once; the fifth waits for a free slot.
    config = fake_config(sidecar, fake, "openai")
    sidecar.call("llmConfigs:update", {"id": config["id"], "maxConcurrency": 4})
    room = room_with(sidecar, [(f"Same{i}", config, "gate-4-words-3-pace-20") for i in range(4)]
                     + [("Fifth", config, "gpt-words-3-pace-20")])
    result = ask(sidecar, room, "One key, five agents")
    assert result["successfulAgents"] == 5, [r.get("errorType") for r in result["agentResults"]]
    # Whichever agent found the four slots taken waited for one: one `queued`, right after its `thinking`.
    queued = [u for u in sidecar.updates() if u["status"] == "queued"]
    assert len(queued) == 1 and queued[0]["seq"] == 2


# --- no agents ---------------------------------------------------------------------------------------------------


def test_a_turn_with_no_enabled_agent_saves_a_notice_and_calls_no_provider(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    room = room_with(sidecar, [("Off", fake_config(sidecar, fake, "openai"), "gpt-ok")])
    sidecar.call("conversationAgents:update", {"id": room.ca("Off"), "enabled": False})
    result = ask(sidecar, room, "Anyone?")
    assert (result["totalAgents"], result["agentResults"]) == (0, [])
    rows = messages(sidecar, room)
    assert [(r["role"], r["content"]) for r in rows] == [
        ("user", "Anyone?"), ("system", "No agents are enabled for this conversation")]
    assert rows[1]["replyToId"] == result["userMessageId"]
    sent = frames(sidecar)
    assert [f["method"] for f in sent if "method" in f] == ["all:complete"]
    assert fake.requests == []


# --- context as the agents see it ------------------------------------------------------------------------------


def _bodies(fake: FakeProvider, model: str) -> list[dict[str, Any]]:
    return [r.body for r in requests_for(fake, model)]


def _seen_by(me: str, replied: list[str], reply: dict[str, str]) -> list[dict[str, str]]:
    """Turn 2 as `me` must see it: own reply as assistant, others' as "<Name>: " user turns, same roles merged."""
    turns = [("user", "First question")]
    turns += [("assistant", reply[n]) if n == me else ("user", f"{n}: {reply[n]}") for n in replied]
    turns.append(("user", "Second question"))
    merged: list[dict[str, str]] = []
    for role, content in turns:
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"] += "\n\n" + content
        else:
            merged.append({"role": role, "content": content})
    return merged


def test_agents_see_their_own_replies_as_assistant_and_others_as_named_user_turns(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    openai, anthropic = fake_config(sidecar, fake, "openai"), fake_config(sidecar, fake, "anthropic")
    room = room_with(sidecar, [("Ann", openai, "gpt-ann-words-4"), ("Ben", anthropic, "claude-ben-words-4")])
    first = ask(sidecar, room, "First question")
    rows = messages(sidecar, room)
    reply = {room.name_of(r["conversationAgentId"]): r["content"] for r in rows if r["role"] == "agent"}

    # Turn 1: siblings never see each other's reply to the same message (snapshot rule).
    (ann_1,), (ben_1,) = _bodies(fake, "gpt-ann-words-4"), _bodies(fake, "claude-ben-words-4")
    assert ann_1["messages"][0]["role"] == "system" and ann_1["messages"][1:] == [
        {"role": "user", "content": "First question"}]
    assert ben_1["messages"] == [{"role": "user", "content": "First question"}]

    second = ask(sidecar, room, "Second question")
    assert second["successfulAgents"] == 2 and first["successfulAgents"] == 2
    ann_2, ben_2 = _bodies(fake, "gpt-ann-words-4")[1], _bodies(fake, "claude-ben-words-4")[1]
    replied = [room.name_of(r["conversationAgentId"]) for r in rows if r["role"] == "agent"]  # first text first
    assert ann_2["messages"][1:] == _seen_by("Ann", replied, reply)
    assert ben_2["messages"] == _seen_by("Ben", replied, reply)
    # Anthropic: the system prompt is top-level with max_tokens; OpenAI: a first `system` message.
    assert isinstance(ben_2["system"], str) and ben_2["system"] and ben_2["max_tokens"] >= 1
    assert ann_2["messages"][0]["role"] == "system" and ann_2["messages"][0]["content"]
    assert all(m["role"] != "system" for m in ann_2["messages"][1:])
    assert [m["role"] for m in ben_2["messages"]] == ["user", "assistant", "user"]


def test_excluded_messages_and_system_rows_are_never_sent(sidecar: Sidecar, fake: FakeProvider) -> None:
    room = room_with(sidecar, [("Ivy", fake_config(sidecar, fake, "anthropic"), "claude-ivy-words-3"),
                               ("Err", fake_config(sidecar, fake, "openai", "other"), "gpt-err-400")])
    ask(sidecar, room, "Keep this")
    hidden = sidecar.call("messages:create", {"conversationId": room.conversation_id, "role": "user",
                                              "content": "Forget this"})
    sidecar.call("messages:updateInclusion", {"id": hidden["id"], "included": False})
    sidecar.call("messages:create", {"conversationId": room.conversation_id, "role": "system",
                                     "content": "A system note"})
    ask(sidecar, room, "Now answer")
    sent = json.dumps(_bodies(fake, "claude-ivy-words-3")[1])
    assert "Keep this" in sent and "Now answer" in sent
    assert "Forget this" not in sent and "A system note" not in sent and "Agent Err" not in sent


# --- failures and retries -------------------------------------------------------------------------------------


def test_a_429_with_retry_after_is_retried_after_that_wait_then_completes(sidecar: Sidecar, fake: FakeProvider) -> None:
    model = "gpt-flaky-429-1-retryafter-0-words-3"
    _, outcome, updates = _single_agent_turn(sidecar, fake, "openai", model)
    assert [u["status"] for u in updates if u["status"] != "streaming"] == ["thinking", "retrying", "complete"]
    retrying = updates[1]
    assert (retrying["attempt"], retrying["retryAfterMs"]) == (2, 0)
    assert assert_well_formed_updates(updates)["status"] == "complete" == outcome["status"]
    assert len(requests_for(fake, model)) == 2


def test_a_503_twice_is_retried_twice_with_backoff_then_completes(sidecar: Sidecar, fake: FakeProvider) -> None:
    model = "claude-flaky-503-2-words-3"
    _, outcome, updates = _single_agent_turn(sidecar, fake, "anthropic", model)
    retries = [u for u in updates if u["status"] == "retrying"]
    assert [u["attempt"] for u in retries] == [2, 3]
    assert 375 <= retries[0]["retryAfterMs"] <= 625 and 750 <= retries[1]["retryAfterMs"] <= 1250  # ±25 % jitter
    assert outcome["status"] == "complete"
    assert len(requests_for(fake, model)) == 3


def test_a_persistent_500_fails_after_three_attempts_as_a_retryable_provider_error(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    model = "gpt-err-500-retryafter-0"
    room, outcome, updates = _single_agent_turn(sidecar, fake, "openai", model)
    final = assert_well_formed_updates(updates)
    assert [u["attempt"] for u in updates if u["status"] == "retrying"] == [2, 3]
    assert (final["errorType"], final["retryable"], outcome["errorType"]) == ("provider", True, "provider")
    assert len(requests_for(fake, model)) == 3
    notices = [r for r in messages(sidecar, room) if r["role"] == "system"]
    assert len(notices) == 1, "one notice for the agent, not one per attempt"


def test_a_retry_after_beyond_thirty_seconds_fails_at_once(sidecar: Sidecar, fake: FakeProvider) -> None:
    model = "gpt-err-429-retryafter-31"
    _, outcome, updates = _single_agent_turn(sidecar, fake, "openai", model)
    assert [u["status"] for u in updates] == ["thinking", "error"]
    assert (outcome["errorType"], outcome["retryable"]) == ("rate_limit", True)
    assert len(requests_for(fake, model)) == 1


def test_an_auth_failure_is_not_retried(sidecar: Sidecar, fake: FakeProvider) -> None:
    model = "claude-err-401"
    _, outcome, updates = _single_agent_turn(sidecar, fake, "anthropic", model)
    assert [u["status"] for u in updates] == ["thinking", "error"]
    assert (outcome["errorType"], outcome["retryable"]) == ("auth", False)
    assert len(requests_for(fake, model)) == 1


def test_no_first_token_within_timeout_ms_times_out_and_is_retried(sidecar: Sidecar, fake: FakeProvider) -> None:
    model = "gpt-hang"
    _, outcome, updates = _single_agent_turn(sidecar, fake, "openai", model, timeoutMs=1000)
    final = assert_well_formed_updates(updates)
    assert (final["errorType"], final["retryable"], outcome["status"]) == ("timeout", True, "error")
    assert [u["attempt"] for u in updates if u["status"] == "retrying"] == [2, 3]
    # The clock runs from the call's start: on a loaded machine an attempt can time out before its request lands.
    assert 1 <= len(requests_for(fake, model)) <= 3


# --- faults ------------------------------------------------------------------------------------------------------


def test_a_stream_reset_after_text_keeps_the_partial_reply_as_error_and_is_not_retried(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    model = "gpt-reset-words-10"
    room, outcome, updates = _single_agent_turn(sidecar, fake, "openai", model)
    final = assert_well_formed_updates(updates)
    assert (final["errorType"], final["retryable"]) == ("network", True)
    assert len(requests_for(fake, model)) == 1, "text had arrived: no retry"
    partial = next(r for r in messages(sidecar, room) if r["role"] == "agent")
    assert partial["status"] == "error" and partial["content"] == streamed_text(updates) != ""
    assert outcome["messageId"] == final["messageId"] != partial["id"]  # the error names the notice


def test_fault_classification_over_the_wire(sidecar: Sidecar, fake: FakeProvider) -> None:
    """One turn, one agent per fault: each ends with the contract's errorType and retryable flag."""
    openai, anthropic = fake_config(sidecar, fake, "openai"), fake_config(sidecar, fake, "anthropic")
    keyless = fake_config(sidecar, fake, "anthropic", "keyless", api_key=None)
    expected = {
        "Malformed": (anthropic, "claude-malformed-words-10", "provider", True),
        "Refused": (closed_port_config(sidecar), "gpt-ok", "network", True),
        "Missing": (openai, "gpt-err-404", "configuration", False),
        "Invalid": (anthropic, "claude-err-400", "validation", False),
        "Keyless": (keyless, "claude-ok", "configuration", False),
    }
    room = room_with(sidecar, [(name, config, model) for name, (config, model, _, _) in expected.items()])
    result = ask(sidecar, room, "Go")
    for name, (_, _, error_type, retryable) in expected.items():
        outcome = result_for(result, room.ca(name))
        assert (outcome["status"], outcome["errorType"], outcome["retryable"]) == ("error", error_type, retryable), name
    assert len(requests_for(fake, "claude-malformed-words-10")) == 1, "text had arrived before the bad line"
    assert len(requests_for(fake, "gpt-err-404")) == 1 and len(requests_for(fake, "claude-err-400")) == 1
    assert requests_for(fake, "claude-ok") == [], "no key: nothing is sent"


# --- echo prefix -------------------------------------------------------------------------------------------------


def test_a_reply_that_echoes_the_agents_own_name_prefix_is_saved_without_it(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    # The fake's Anthropic `echo` reply is JSON starting `{"system": `; an agent named `{"system"` sees its prefix.
    room, outcome, updates = _single_agent_turn(sidecar, fake, "anthropic", "claude-echo", name='{"system"')
    row = next(r for r in messages(sidecar, room) if r["role"] == "agent")
    assert outcome["status"] == "complete"
    assert row["content"].startswith('"') and not row["content"].startswith('{"system"')
    assert json.loads('{"system": ' + row["content"])["messages"][-1]["content"] == "Hello there"
    assert streamed_text(updates) == row["content"]


# --- the demo provider ----------------------------------------------------------------------------------------


def test_the_demo_provider_answers_deterministically_naming_the_agent(sidecar: Sidecar) -> None:
    room = make_room(sidecar, [make_agent(sidecar, "Demi", demo_config(sidecar), "demo")])
    first = ask(sidecar, room, "Tell me about demos")
    second = ask(sidecar, room, "Tell me about demos")
    replies = [r for r in messages(sidecar, room) if r["role"] == "agent"]
    assert [r["status"] for r in replies] == ["complete", "complete"]
    assert "Demi" in replies[0]["content"] and "Tell me about demos" in replies[0]["content"]
    assert replies[0]["content"] == replies[1]["content"]
    for turn in (first, second):
        updates = turn_updates(sidecar, turn["userMessageId"], room.ca("Demi"))
        assert streamed_text(updates) == replies[0]["content"]


def test_the_demo_providers_rate_limit_error_is_retried_twice_then_reported(sidecar: Sidecar) -> None:
    room = make_room(sidecar, [make_agent(sidecar, "Limited", demo_config(sidecar), "demo-error-rate_limit")])
    result = ask(sidecar, room, "Hi")
    updates = turn_updates(sidecar, result["userMessageId"], room.ca("Limited"))
    assert [u["status"] for u in updates] == ["thinking", "retrying", "retrying", "error"]
    assert (updates[-1]["errorType"], updates[-1]["retryable"]) == ("rate_limit", True)
    assert API_KEY not in json.dumps(updates)
