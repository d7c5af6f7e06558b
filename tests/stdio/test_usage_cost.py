"""Usage and cost over stdio (CONTRACT v2 §4 `Usage`, §5d `conversations:usage`), through both real SDKs.

The fake provider counts words as tokens and takes its extra counts from the model name (``cached-<n>``,
``cachewrite-<n>``, ``reasoning-<n>``, ``cost-<n>``, ``nousage``); names that start with a catalogue model
(``gpt-4o-mini-…``, ``claude-haiku-4-5-…``) are priced as that model. Expected costs are computed here with exact
fractions from the catalogue's published prices, independently of the sidecar's arithmetic.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from typing import Any

import pytest

from sidecar.chat.tokens import PER_MESSAGE_TOKENS, estimate_text_tokens
from tests.fake_provider import FakeProvider
from tests.sidecar_client import Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import (
    Room,
    ask,
    assert_well_formed_updates,
    demo_config,
    fake_config,
    messages,
    requests_for,
    result_for,
    room_with,
    turn_updates,
)

fake, sidecar = chat_setup.fake, chat_setup.sidecar  # the shared fixtures

# US dollars per million tokens (input, cached input, output), as sidecar/catalogue/models.json has them.
GPT_4O_MINI = ("0.15", "0.075", "0.6")
CLAUDE_HAIKU_4_5 = ("1.0", "0.1", "5.0")
TIMINGS = ("firstTokenMs", "totalMs")


def _micro_usd(prices: tuple[str, str, str], uncached: int, cached: int, output: int) -> int:
    """$/MTok × tokens is micro-dollars; rounded half up once."""
    exact = Fraction(prices[0]) * uncached + Fraction(prices[1]) * cached + Fraction(prices[2]) * output
    return math.floor(exact + Fraction(1, 2))


def _words(content: Any) -> int:
    if isinstance(content, list):
        return sum(_words(block.get("text", "")) for block in content)
    return len(str(content or "").split())


def _prompt_words(provider: str, body: dict[str, Any]) -> int:
    """What the fake counts as the prompt's (uncached) input tokens: the words of every message and the system."""
    words = sum(_words(m["content"]) for m in body["messages"])
    return words + (_words(body.get("system")) if provider == "anthropic" else 0)


def _one_reply(sidecar: Sidecar, fake: FakeProvider, provider: str, model: str) -> tuple[dict[str, Any], ...]:
    """One agent answers once: its complete update, its AgentResult and its messages:list row, all checked equal
    in usage, plus the request body the fake received."""
    room = room_with(sidecar, [("Ada", fake_config(sidecar, fake, provider), model)])
    result = ask(sidecar, room, "Tell me something about the sea")
    final = assert_well_formed_updates(turn_updates(sidecar, result["userMessageId"], room.ca("Ada")))
    assert final["status"] == "complete", final
    row = next(r for r in messages(sidecar, room) if r["role"] == "agent")
    outcome = result_for(result, room.ca("Ada"))
    assert final["usage"] == outcome["usage"] == row["usage"]  # one usage: event, result and row
    [request] = requests_for(fake, model)
    return final["usage"], row, request.body


def _tokens_and_cost(usage: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in usage.items() if k not in TIMINGS}


# --- one reply ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["", "-jsonbody"], ids=["streamed", "whole JSON body"])
def test_openai_cached_and_reasoning_tokens_are_read_and_priced_from_the_catalogue(
    sidecar: Sidecar, fake: FakeProvider, shape: str
) -> None:
    usage, _, body = _one_reply(sidecar, fake, "openai", f"gpt-4o-mini-words-5-cached-100-reasoning-7{shape}")
    prompt = _prompt_words("openai", body)
    assert _tokens_and_cost(usage) == {
        "inputTokens": prompt + 100,  # prompt_tokens: cached ones included
        "outputTokens": 5 + 7,  # completion_tokens: reasoning included
        "cachedInputTokens": 100,
        "reasoningTokens": 7,
        "costMicroUsd": _micro_usd(GPT_4O_MINI, uncached=prompt, cached=100, output=12),
        "costSource": "estimated",
    }
    assert 0 <= usage["firstTokenMs"] <= usage["totalMs"]


@pytest.mark.parametrize("shape", ["", "-jsonbody"], ids=["streamed", "whole JSON body"])
def test_anthropic_cache_reads_and_writes_count_as_input_and_are_priced_from_the_catalogue(
    sidecar: Sidecar, fake: FakeProvider, shape: str
) -> None:
    model = f"claude-haiku-4-5-words-5-cached-100-cachewrite-20-reasoning-7{shape}"
    usage, _, body = _one_reply(sidecar, fake, "anthropic", model)
    prompt = _prompt_words("anthropic", body)
    assert _tokens_and_cost(usage) == {
        "inputTokens": prompt + 100 + 20,  # input_tokens + cache reads + cache writes
        "outputTokens": 5 + 7,  # Anthropic counts thinking as output and reports no reasoning split
        "cachedInputTokens": 100,
        # Cache writes are priced as input: the catalogue has no cache-write price.
        "costMicroUsd": _micro_usd(CLAUDE_HAIKU_4_5, uncached=prompt + 20, cached=100, output=12),
        "costSource": "estimated",
    }


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_model_the_catalogue_does_not_price_is_unpriced_with_no_cost(
    sidecar: Sidecar, fake: FakeProvider, provider: str
) -> None:
    model = "localmodel-words-3-cached-2" if provider == "openai" else "claude-words-3-cached-2"
    usage, _, body = _one_reply(sidecar, fake, provider, model)
    assert usage["costSource"] == "unpriced" and "costMicroUsd" not in usage
    assert (usage["inputTokens"], usage["outputTokens"]) == (_prompt_words(provider, body) + 2, 3)


@pytest.mark.parametrize("model", ["gpt-4o-mini-words-3-cost-1234", "openrouter-model-words-3-cost-987654"])
def test_a_cost_the_server_reports_is_taken_as_reported(sidecar: Sidecar, fake: FakeProvider, model: str) -> None:
    usage, _, _ = _one_reply(sidecar, fake, "openai", model)
    # usage.cost is in US dollars (0.001234, 0.987654): whole micro-dollars, whether the model is priced or not.
    assert (usage["costMicroUsd"], usage["costSource"]) == (int(model.rsplit("-", 1)[1]), "reported")
    assert usage["outputTokens"] == 3


@pytest.mark.parametrize(
    ("provider", "model", "prices"),
    [("openai", "gpt-4o-mini-words-6-nousage", GPT_4O_MINI),
     ("anthropic", "claude-haiku-4-5-words-6-nousage", CLAUDE_HAIKU_4_5)],
    ids=["openai", "anthropic"],
)  # fmt: skip
def test_a_provider_that_reports_no_usage_gets_estimated_tokens_and_cost(
    sidecar: Sidecar, fake: FakeProvider, provider: str, model: str, prices: tuple[str, str, str]
) -> None:
    usage, row, body = _one_reply(sidecar, fake, provider, model)
    contents = [m["content"] for m in body["messages"]] + ([body["system"]] if "system" in body else [])
    estimated_input = sum(estimate_text_tokens(c) + PER_MESSAGE_TOKENS for c in contents)
    estimated_output = estimate_text_tokens(row["content"])
    assert _tokens_and_cost(usage) == {
        "inputTokens": estimated_input,
        "outputTokens": estimated_output,
        "tokensEstimated": True,
        "costMicroUsd": _micro_usd(prices, uncached=estimated_input, cached=0, output=estimated_output),
        "costSource": "estimated",
    }


def test_the_demo_provider_costs_nothing_and_says_it_is_an_estimate(sidecar: Sidecar) -> None:
    room = room_with(sidecar, [("Demo", demo_config(sidecar), "demo")])
    result = ask(sidecar, room, "Hello")
    usage = result_for(result, room.ca("Demo"))["usage"]
    assert (usage["costMicroUsd"], usage["costSource"]) == (0, "estimated")
    assert usage["outputTokens"] > 0 and "tokensEstimated" not in usage  # the demo reports its own counts


def test_a_cancelled_reply_keeps_an_estimated_usage_for_its_partial_text(sidecar: Sidecar, fake: FakeProvider) -> None:
    room = room_with(sidecar, [("Ada", fake_config(sidecar, fake, "openai"), "gpt-4o-mini-words-200-pace-20")])
    request_id = sidecar.request("processUserMessage", {"conversationId": room.conversation_id, "content": "Go"})
    sidecar.wait_notification(lambda n: n["method"] == "agent:update" and n["params"]["status"] == "streaming")
    assert sidecar.call("chat:cancel", {"conversationId": room.conversation_id}) == {"cancelled": 1}
    assert "result" in sidecar.response(request_id)
    [row] = [r for r in messages(sidecar, room) if r["role"] == "agent"]
    assert row["status"] == "cancelled"
    usage = row["usage"]
    assert usage["tokensEstimated"] is True and usage["outputTokens"] == estimate_text_tokens(row["content"])
    assert usage["costSource"] == "estimated" and usage["costMicroUsd"] >= 0
    total = sidecar.call("conversations:usage", {"id": room.conversation_id})["total"]
    assert total["outputTokens"] == usage["outputTokens"] and total["tokensEstimated"] is True


# --- conversations:usage -----------------------------------------------------------------------------------------


def _all_replies(sidecar: Sidecar, room: Room, name: str) -> list[dict[str, Any]]:
    rows = sidecar.call("messages:list", {"conversationId": room.conversation_id, "allVersions": True})
    return [r for r in rows if r["conversationAgentId"] == room.ca(name)]


def _sum(rows: list[dict[str, Any]], field: str) -> int:
    return sum(r["usage"].get(field, 0) for r in rows)


def test_conversation_usage_is_the_sum_of_its_replies_every_version_included(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    room = room_with(sidecar, [
        ("Ann", fake_config(sidecar, fake, "openai"), "gpt-4o-mini-words-5-cached-10-reasoning-2"),
        ("Ben", fake_config(sidecar, fake, "anthropic", "fake anthropic"), "claude-haiku-4-5-words-4-cached-3"),
    ])  # fmt: skip
    first = ask(sidecar, room, "Hello")
    ask(sidecar, room, "And now?")
    regenerated = sidecar.call("chat:regenerate", {"conversationId": room.conversation_id,
                                                   "conversationAgentId": room.ca("Ann"),
                                                   "userMessageId": first["userMessageId"]})  # fmt: skip
    assert regenerated["status"] == "complete"
    ann, ben = _all_replies(sidecar, room, "Ann"), _all_replies(sidecar, room, "Ben")
    assert (len(ann), len(ben)) == (3, 2)  # Ann's first reply has two versions, and both count

    report = sidecar.call("conversations:usage", {"id": room.conversation_id})
    assert [(a["conversationAgentId"], a["agentName"]) for a in report["perAgent"]] == [
        (room.ca("Ann"), "Ann"), (room.ca("Ben"), "Ben"),
    ]  # fmt: skip
    fields = ("inputTokens", "outputTokens", "cachedInputTokens", "reasoningTokens", "costMicroUsd", *TIMINGS)
    for rows, entry in ((ann, report["perAgent"][0]), (ben, report["perAgent"][1])):
        sums = {f: _sum(rows, f) for f in fields if any(f in r["usage"] for r in rows)}
        assert entry["usage"] == {**sums, "costSource": "estimated"}
    both = ann + ben
    assert report["total"] == {**{f: _sum(both, f) for f in fields}, "costSource": "estimated"}
    assert report["total"]["costMicroUsd"] > 0 and report["total"]["reasoningTokens"] == 3 * 2


def test_conversation_usage_is_unpriced_when_any_reply_is_and_reported_only_when_all_are(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    config = fake_config(sidecar, fake, "openai")
    room = room_with(sidecar, [("Rep", config, "gpt-4o-mini-words-3-cost-1500"), ("Est", config, "gpt-4o-mini-words-3"),
                               ("Unp", config, "localmodel-words-3")])  # fmt: skip
    ask(sidecar, room, "Hello")
    report = sidecar.call("conversations:usage", {"id": room.conversation_id})
    per_agent = {a["agentName"]: a["usage"] for a in report["perAgent"]}
    assert [per_agent[n]["costSource"] for n in ("Rep", "Est", "Unp")] == ["reported", "estimated", "unpriced"]
    assert per_agent["Rep"]["costMicroUsd"] == 1500 and "costMicroUsd" not in per_agent["Unp"]
    # Unpriced when any reply is; the cost then covers the priced replies only.
    assert report["total"]["costSource"] == "unpriced"
    assert report["total"]["costMicroUsd"] == 1500 + per_agent["Est"]["costMicroUsd"]

    sidecar.call("conversationAgents:remove", {"id": room.ca("Unp")})  # its replies go with it
    sidecar.call("conversationAgents:remove", {"id": room.ca("Est")})
    report = sidecar.call("conversations:usage", {"id": room.conversation_id})
    assert [a["agentName"] for a in report["perAgent"]] == ["Rep"]
    assert (report["total"]["costSource"], report["total"]["costMicroUsd"]) == ("reported", 1500)


def test_conversation_usage_of_a_quiet_conversation_is_zero_and_of_an_unknown_one_not_found(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    room = room_with(sidecar, [("Ann", fake_config(sidecar, fake, "openai"), "gpt-4o-mini-ok")])
    zero = {"firstTokenMs": 0, "totalMs": 0, "costMicroUsd": 0, "costSource": "estimated"}
    report = sidecar.call("conversations:usage", {"id": room.conversation_id})
    assert report == {"total": zero, "perAgent": [{"conversationAgentId": room.ca("Ann"), "agentName": "Ann",
                                                   "usage": zero}]}  # fmt: skip
    assert sidecar.call_error("conversations:usage", {"id": "no-such-conversation"}).kind == "not_found"
    assert sidecar.call_error("conversations:usage", {}).code == -32602


def test_usage_survives_an_export_and_import(sidecar: Sidecar, fake: FakeProvider) -> None:
    room = room_with(sidecar, [("Ann", fake_config(sidecar, fake, "openai"), "gpt-4o-mini-words-4-cached-5-cost-77")])
    ask(sidecar, room, "Hello")
    exported = sidecar.call("conversations:export", {"id": room.conversation_id, "format": "json"})
    [reply] = [m for m in json.loads(exported["content"])["messages"] if m["role"] == "agent"]
    assert reply["usage"]["cachedInputTokens"] == 5 and reply["usage"]["costSource"] == "reported"
    imported = sidecar.call("conversations:import", {"content": exported["content"]})
    original = sidecar.call("conversations:usage", {"id": room.conversation_id})["total"]
    assert sidecar.call("conversations:usage", {"id": imported["id"]})["total"] == original
