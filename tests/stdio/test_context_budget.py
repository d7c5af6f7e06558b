"""Context budgets over stdio (CONTRACT §5c): trimming and its report, the message too long for one agent, the one
automatic retry after a provider's overflow, both SDKs' overflow errors, `conversations:contextUsage`, and the
per-model calibration of the token estimates.

The fake provider counts tokens as words (its usage and its `ctx-<n>` limit), while the sidecar estimates from
characters: calibration has something to correct, and the overflow the fake reports is in its own units.
"""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.chat.call_plans import MESSAGE_TOO_LONG
from sidecar.providers.base import FRIENDLY_MESSAGES
from tests.fake_provider import FakeProvider
from tests.sidecar_client import Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import (
    Room,
    assert_well_formed_updates,
    fake_config,
    messages,
    requests_for,
    result_for,
    room_with,
    turn_updates,
)

fake, sidecar = chat_setup.fake, chat_setup.sidecar  # the shared fixtures

WORDS_60 = " ".join(["budget"] * 60)  # 60 words for the fake, ~100 estimated tokens for the sidecar


def _add(sidecar: Sidecar, room: Room, content: str) -> str:
    row = sidecar.call("messages:create", {"conversationId": room.conversation_id, "role": "user", "content": content})
    return row["id"]


def _history(sidecar: Sidecar, room: Room, count: int, text: str = WORDS_60) -> list[str]:
    return [_add(sidecar, room, f"{i}: {text}") for i in range(count)]


def _context(sidecar: Sidecar, room: Room, name: str, user_message_id: str | None = None) -> dict[str, Any]:
    params = {"conversationId": room.conversation_id, "agentId": room.ca(name)}
    if user_message_id is not None:
        params["userMessageId"] = user_message_id
    return sidecar.call("buildAgentContext", params)


def _run(sidecar: Sidecar, room: Room, user_message_id: str) -> dict[str, Any]:
    params = {"conversationId": room.conversation_id, "userMessageId": user_message_id}
    return sidecar.call("processUserMessage", params)


def _fake_words(provider: str, body: dict[str, Any]) -> int:
    """What the fake counts as a request's input tokens: the words of every message (and Anthropic's system)."""
    texts = [m["content"] for m in body["messages"]] + ([body["system"]] if provider == "anthropic" else [])
    return sum(len(text.split()) for text in texts)


def _config(sidecar: Sidecar, fake: FakeProvider, provider: str) -> dict[str, Any]:
    return fake_config(sidecar, fake, provider)


def _model(provider: str, behaviour: str) -> str:
    return f"{'gpt' if provider == 'openai' else 'claude'}-{behaviour}"  # unknown to the catalogue: 8,192 tokens


# --- trimming and its report --------------------------------------------------------------------------------------


def test_a_long_history_is_trimmed_newest_first_and_the_trim_is_reported(sidecar: Sidecar, fake: FakeProvider) -> None:
    room = room_with(sidecar, [("Oli", _config(sidecar, fake, "openai"), "gpt-ok")], contextWindow=2000, maxTokens=100)
    ids = _history(sidecar, room, 30)
    trigger = _add(sidecar, room, "What do you make of all that?")

    before = _context(sidecar, room, "Oli", trigger)  # before any call: nothing calibrated yet
    budget = before["budget"]
    assert (budget["contextWindow"], budget["reservedOutput"], budget["estimated"]) == (2000, 100, True)
    assert budget["systemTokens"] + budget["historyTokens"] <= 2000 - 100 - 100  # the 5 % margin
    assert budget["droppedCount"] > 0 and budget["keptCount"] + budget["droppedCount"] == 31
    kept = budget["keptCount"]
    assert budget["droppedMessageIds"] == list(reversed(ids[: 31 - kept]))  # every older one, the newest first
    assert before["messages"][-1]["content"].endswith("What do you make of all that?")  # the trigger is kept

    result = _run(sidecar, room, trigger)
    assert result["successfulAgents"] == 1
    [sent] = requests_for(fake, "gpt-ok")
    assert sent.body == before["request"]  # the preview is what was sent
    thinking = assert_well_formed_updates(turn_updates(sidecar, trigger, room.ca("Oli")))
    context = turn_updates(sidecar, trigger, room.ca("Oli"))[0]["context"]
    assert context == {"tokens": budget["systemTokens"] + budget["historyTokens"], "limit": 2000 - 100 - 100,
                       "droppedCount": budget["droppedCount"]}
    assert thinking["status"] == "complete"


def test_a_message_too_long_for_one_agent_fails_it_before_any_call_while_a_sibling_answers(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    config = _config(sidecar, fake, "openai")
    small = chat_setup.make_agent(sidecar, "Small", config, "gpt-small-ok", contextWindow=1000, maxTokens=100)
    big = chat_setup.make_agent(sidecar, "Big", config, "gpt-big-ok", maxTokens=100)
    room = chat_setup.make_room(sidecar, [small, big])
    result = chat_setup.ask(sidecar, room, " ".join(["enormous"] * 600))  # ~1,350 estimated tokens

    failed = result_for(result, room.ca("Small"))
    assert (failed["status"], failed["errorType"], failed["retryable"]) == ("error", "context_length", False)
    assert failed["error"] == MESSAGE_TOO_LONG
    assert requests_for(fake, "gpt-small-ok") == []  # no provider call at all
    assert result_for(result, room.ca("Big"))["status"] == "complete"
    updates = turn_updates(sidecar, result["userMessageId"], room.ca("Small"))
    assert [u["status"] for u in updates] == ["thinking", "error"]
    assert updates[0]["context"]["tokens"] > updates[0]["context"]["limit"] == 1000 - 100 - 50
    notes = [m["content"] for m in messages(sidecar, room) if m["role"] == "system"]
    assert notes == [f"Agent Small: {MESSAGE_TOO_LONG}"]


# --- the provider's overflow: one automatic retry ---------------------------------------------------------------------


def _overflowing_room(
    sidecar: Sidecar,
    fake: FakeProvider,
    provider: str,
    limit_from: Any,
    extra: str = "",
    history: int = 8,
    question: str = "And now?",
) -> tuple[Room, str, dict[str, Any]]:
    """An agent whose model is switched to `ctx-<n>` once its request is known: n = limit_from(words sent, words of
    the system prompt)."""
    room = room_with(sidecar, [("Oli", _config(sidecar, fake, provider), _model(provider, "ok"))])
    _history(sidecar, room, history)
    trigger = _add(sidecar, room, question)
    preview = _context(sidecar, room, "Oli", trigger)
    words = _fake_words(provider, preview["request"])
    system_words = len(preview["systemPrompt"].split())
    model = _model(provider, f"ctx-{limit_from(words, system_words)}{extra}")
    sidecar.call("agents:update", {"id": room.members["Oli"]["agentId"], "model": model})
    return room, trigger, {"model": model, "words": words, "preview": preview}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("extra", ["", "-nocount"], ids=["counts", "no-counts"])
def test_an_overflow_is_retried_once_with_a_smaller_history_and_then_answers(
    sidecar: Sidecar, fake: FakeProvider, provider: str, extra: str
) -> None:
    room, trigger, facts = _overflowing_room(sidecar, fake, provider, lambda words, _: words - 40, extra)
    result = _run(sidecar, room, trigger)
    oli = result_for(result, room.ca("Oli"))
    assert oli["status"] == "complete", oli
    first, second = (r.body for r in requests_for(fake, facts["model"]))
    assert _fake_words(provider, first) == facts["words"]
    assert _fake_words(provider, second) <= facts["words"] - 40  # under the fake's limit
    # The user messages are merged into one turn: the retry's is shorter, and still ends with the trigger.
    assert len(second["messages"][-1]["content"]) < len(first["messages"][-1]["content"])
    assert second["messages"][-1]["content"].endswith("And now?")
    statuses = [u["status"] for u in turn_updates(sidecar, trigger, room.ca("Oli"))]
    assert statuses[0] == "thinking" and statuses[-1] == "complete" and "error" not in statuses


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_second_overflow_ends_the_agent_as_context_length(
    sidecar: Sidecar, fake: FakeProvider, provider: str
) -> None:
    # No counts: the retry cuts a quarter, which a limit of 10 words never fits.
    room, trigger, facts = _overflowing_room(sidecar, fake, provider, lambda words, _: 10, "-nocount")
    result = _run(sidecar, room, trigger)
    oli = result_for(result, room.ca("Oli"))
    assert (oli["status"], oli["errorType"], oli["retryable"]) == ("error", "context_length", False)
    assert oli["error"] == FRIENDLY_MESSAGES["context_length"]
    assert len(requests_for(fake, facts["model"])) == 2  # the call and its one retry, no more
    updates = turn_updates(sidecar, trigger, room.ca("Oli"))
    assert "retrying" not in [u["status"] for u in updates]  # the normal retry loop leaves it alone
    assert f"Agent Oli: {FRIENDLY_MESSAGES['context_length']}" in [m["content"] for m in messages(sidecar, room)]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_reported_overflow_that_leaves_no_room_for_the_trigger_ends_without_a_second_call(
    sidecar: Sidecar, fake: FakeProvider, provider: str
) -> None:
    # A long question alone, and a limit just past the system prompt: the overflow the provider reports is more
    # than the budget can give up while keeping the question.
    question = " ".join(["long"] * 300)
    room, trigger, facts = _overflowing_room(
        sidecar, fake, provider, lambda _, system_words: system_words + 10, history=0, question=question
    )
    result = _run(sidecar, room, trigger)
    oli = result_for(result, room.ca("Oli"))
    assert (oli["status"], oli["errorType"]) == ("error", "context_length")
    assert oli["error"] == MESSAGE_TOO_LONG  # the shrunk budget cannot hold even the trigger
    assert len(requests_for(fake, facts["model"])) == 1


# --- how full each context is -------------------------------------------------------------------------------------


def test_context_usage_passes_one_exactly_when_trimming_starts(sidecar: Sidecar, fake: FakeProvider) -> None:
    room = room_with(sidecar, [("Oli", _config(sidecar, fake, "openai"), "gpt-ok")], contextWindow=2000, maxTokens=100)
    off = chat_setup.make_agent(sidecar, "Off", chat_setup.demo_config(sidecar), "demo")
    sidecar.call("conversationAgents:add", {"conversationId": room.conversation_id, "agentId": off["id"],
                                            "enabled": False})
    crossed = None
    for count in range(1, 40):
        _add(sidecar, room, f"{count}: {WORDS_60}")
        [usage] = sidecar.call("conversations:contextUsage", {"id": room.conversation_id})  # enabled agents only
        budget = _context(sidecar, room, "Oli")["budget"]
        assert (usage["conversationAgentId"], usage["agentName"], usage["model"]) == (room.ca("Oli"), "Oli", "gpt-ok")
        assert usage["contextWindow"] == 2000 and usage["estimated"] is True
        assert (usage["ratio"] > 1) == (budget["droppedCount"] > 0), (count, usage, budget)
        if budget["droppedCount"] == 0:
            assert abs(usage["tokens"] - budget["systemTokens"] - budget["historyTokens"]) <= 2
        elif crossed is None:
            crossed = count
    assert crossed is not None and crossed > 5


# --- calibration ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_calibration_brings_the_estimate_near_the_providers_own_count(
    sidecar: Sidecar, fake: FakeProvider, provider: str
) -> None:
    model = _model(provider, "ok")
    room = room_with(sidecar, [("Oli", _config(sidecar, fake, provider), model)])
    _history(sidecar, room, 10)
    trigger = _add(sidecar, room, "Count these words, please.")

    def estimate() -> int:
        budget = _context(sidecar, room, "Oli", trigger)["budget"]
        return budget["systemTokens"] + budget["historyTokens"]

    before = estimate()
    result = _run(sidecar, room, trigger)
    reported = result_for(result, room.ca("Oli"))["usage"]["inputTokens"]
    assert reported == _fake_words(provider, requests_for(fake, model)[0].body)
    after = estimate()
    print(f"\n{provider}: reported {reported} input tokens; estimate before calibration {before} "  # noqa: T201
          f"({(before - reported) / reported:+.0%}), after {after} ({(after - reported) / reported:+.0%})")
    assert abs(after - reported) < abs(before - reported) / 4, (before, after, reported)
    assert abs(after - reported) <= 0.05 * reported


# --- auto mode: the run's own conversation must fit ----------------------------------------------------------------


def test_an_auto_run_stops_before_its_own_messages_outgrow_the_next_speakers_budget(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    config = _config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Ann", config, "gpt-words-120"), ("Ben", config, "gpt-words-120")],
                     contextWindow=2500, maxTokens=100)
    # Older history that trimming may drop: it never stops a run.
    _history(sidecar, room, 20)
    sidecar.call("conversations:update", {"id": room.conversation_id, "chatMode": "auto",
                                          "autoSettings": {"maxMessages": 50}})
    result = chat_setup.ask(sidecar, room, "Talk among yourselves.")
    auto = result["auto"]
    assert auto["stopReason"] == "context_full", auto
    assert 1 <= auto["replies"] < 50
    assert {r["status"] for r in result["agentResults"]} == {"complete"}  # stopped before any overflow
    # The run's own messages (the question and its replies) still fit the budget of each agent: the last
    # speaker's context kept all of them.
    for name in ("Ann", "Ben"):
        budget = _context(sidecar, room, name)["budget"]
        assert budget["keptCount"] >= auto["replies"] + 1, (name, budget)
    assert [m["content"] for m in messages(sidecar, room)][-1] == (
        "Auto mode stopped: the conversation no longer fits in the agents' context"
    )
