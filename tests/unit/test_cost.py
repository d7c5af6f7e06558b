"""One reply's usage and cost, and the totals of many (sidecar.chat.cost): pure functions, no process."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.catalogue import Pricing, lookup
from sidecar.chat.cost import estimated_input_tokens, price_micro_usd, reply_usage, total_usage
from sidecar.chat.tokens import PER_MESSAGE_TOKENS, estimate_text_tokens
from sidecar.providers.base import Usage

GPT_4O_MINI = Pricing(input_per_mtok=0.15, output_per_mtok=0.6, cached_input_per_mtok=0.075)
BODY = {"model": "m", "system": "You are Ada.", "messages": [{"role": "user", "content": "Hello there, Ada!"}]}


def test_dollars_per_million_tokens_times_tokens_is_micro_dollars() -> None:
    assert price_micro_usd(Pricing(2.0, 8.0), 1_000, 500) == 2 * 1_000 + 8 * 500
    # 0.15 × 1,234 + 0.6 × 567 = 185.1 + 340.2 = 525.3 → 525: exact decimals, one rounding.
    assert price_micro_usd(GPT_4O_MINI, 1_234, 567) == 525


def test_rounding_is_half_up_once_per_reply() -> None:
    assert price_micro_usd(Pricing(0.5, 0.0), 1, 0) == 1  # 0.5 µ$ rounds up
    assert price_micro_usd(Pricing(0.25, 0.25), 1, 1) == 1  # 0.25 + 0.25: summed before rounding
    assert price_micro_usd(Pricing(0.1, 0.2), 1, 1) == 0  # 0.3 (exactly, not 0.30000000000000004)


def test_cached_input_is_priced_at_the_cached_price_when_the_catalogue_has_one() -> None:
    # 1,000 input of which 600 cached: 400 × 0.15 + 600 × 0.075 + 100 × 0.6 = 60 + 45 + 60.
    assert price_micro_usd(GPT_4O_MINI, 1_000, 100, cached_input_tokens=600) == 165
    # Without a cached price the cached tokens cost what any input does.
    assert price_micro_usd(Pricing(0.15, 0.6), 1_000, 100, cached_input_tokens=600) == 150 + 60


def test_a_cached_count_above_the_input_count_is_capped() -> None:
    assert price_micro_usd(GPT_4O_MINI, 100, 0, cached_input_tokens=500) == 8  # 100 × 0.075 = 7.5 → 8


def test_the_catalogue_prices_a_dated_snapshot_like_its_model() -> None:
    info = lookup("openai", "gpt-4o-mini-2024-07-18")
    assert info is not None and info.pricing == GPT_4O_MINI


def test_reported_tokens_with_a_catalogue_price_give_an_estimated_cost() -> None:
    usage = reply_usage(Usage(1_000, 100, cached_input_tokens=600, reasoning_tokens=40), BODY, "x", GPT_4O_MINI)
    assert usage == {
        "inputTokens": 1_000, "outputTokens": 100, "cachedInputTokens": 600, "reasoningTokens": 40,
        "costMicroUsd": 165, "costSource": "estimated",
    }  # fmt: skip


def test_a_reported_cost_wins_over_the_catalogue() -> None:
    usage = reply_usage(Usage(1_000, 100, cost_micro_usd=7_777), BODY, "x", GPT_4O_MINI)
    assert usage["costMicroUsd"] == 7_777 and usage["costSource"] == "reported"
    unpriced_model = reply_usage(Usage(1_000, 100, cost_micro_usd=0), BODY, "x", None)
    assert unpriced_model["costMicroUsd"] == 0 and unpriced_model["costSource"] == "reported"


def test_a_model_without_a_price_is_unpriced_with_no_cost_at_all() -> None:
    usage = reply_usage(Usage(1_000, 100), BODY, "x", None)
    assert usage == {"inputTokens": 1_000, "outputTokens": 100, "costSource": "unpriced"}


def test_no_reported_usage_estimates_both_counts_and_says_so() -> None:
    reply = "A short reply of some words."
    usage = reply_usage(None, BODY, reply, GPT_4O_MINI)
    expected_input = estimate_text_tokens("You are Ada.") + estimate_text_tokens("Hello there, Ada!") + 2 * 4
    assert usage["inputTokens"] == expected_input == estimated_input_tokens(BODY)
    assert usage["outputTokens"] == estimate_text_tokens(reply)
    assert usage["tokensEstimated"] is True
    assert usage["costSource"] == "estimated"
    assert usage["costMicroUsd"] == price_micro_usd(GPT_4O_MINI, usage["inputTokens"], usage["outputTokens"])


def test_only_the_missing_count_is_estimated() -> None:
    usage = reply_usage(Usage(input_tokens=321), BODY, "four words right here", GPT_4O_MINI)
    assert usage["inputTokens"] == 321 and usage["outputTokens"] == estimate_text_tokens("four words right here")
    assert usage["tokensEstimated"] is True
    assert "tokensEstimated" not in reply_usage(Usage(321, 5), BODY, "x", GPT_4O_MINI)


def test_without_a_request_the_input_stays_unknown_and_nothing_is_priced() -> None:
    usage = reply_usage(None, None, "", GPT_4O_MINI)
    assert "inputTokens" not in usage and usage["costSource"] == "unpriced" and "costMicroUsd" not in usage


@pytest.mark.parametrize(
    ("body", "texts"),
    [
        pytest.param({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]},
                     ["S", "U"], id="openai: the system prompt is a message"),
        pytest.param({"system": "S", "messages": [{"role": "user", "content": "U"}]}, ["S", "U"], id="anthropic"),
        pytest.param({"system": [{"type": "text", "text": "S"}],
                      "messages": [{"role": "user", "content": [{"type": "text", "text": "U"}, {"type": "image"}]}]},
                     ["S", "U"], id="content blocks"),
        pytest.param({"messages": []}, [], id="nothing to count"),
    ],
)  # fmt: skip
def test_the_input_estimate_counts_the_system_prompt_and_every_message(body: dict[str, Any], texts: list[str]) -> None:
    assert estimated_input_tokens(body) == sum(estimate_text_tokens(t) + PER_MESSAGE_TOKENS for t in texts)


def _usage(cost: int | None, source: str | None, **counts: Any) -> dict[str, Any]:
    usage: dict[str, Any] = {"inputTokens": 10, "outputTokens": 5, "firstTokenMs": 100, "totalMs": 400, **counts}
    if cost is not None:
        usage["costMicroUsd"] = cost
    if source is not None:
        usage["costSource"] = source
    return usage


def test_a_total_adds_every_count_and_timing() -> None:
    total = total_usage([_usage(30, "estimated", cachedInputTokens=4), _usage(12, "estimated", reasoningTokens=2)])
    assert total == {
        "inputTokens": 20, "outputTokens": 10, "cachedInputTokens": 4, "reasoningTokens": 2,
        "firstTokenMs": 200, "totalMs": 800, "costMicroUsd": 42, "costSource": "estimated",
    }  # fmt: skip


def test_a_total_is_reported_only_when_every_reply_is() -> None:
    assert total_usage([_usage(5, "reported"), _usage(7, "reported")])["costSource"] == "reported"
    mixed = total_usage([_usage(5, "reported"), _usage(7, "estimated")])
    assert mixed["costSource"] == "estimated" and mixed["costMicroUsd"] == 12


def test_one_unpriced_reply_makes_the_total_unpriced_with_the_priced_replies_cost() -> None:
    total = total_usage([_usage(5, "reported"), _usage(None, "unpriced"), _usage(7, "estimated")])
    assert total["costSource"] == "unpriced" and total["costMicroUsd"] == 12
    nothing_priced = total_usage([_usage(None, "unpriced"), _usage(None, "unpriced")])
    assert nothing_priced["costSource"] == "unpriced" and "costMicroUsd" not in nothing_priced


def test_usage_saved_before_costs_were_recorded_counts_as_unpriced() -> None:
    old = {"inputTokens": 10, "outputTokens": 5, "firstTokenMs": 100, "totalMs": 400}
    total = total_usage([old, _usage(7, "estimated")])
    assert total["costSource"] == "unpriced" and total["costMicroUsd"] == 7 and total["inputTokens"] == 20


def test_a_priced_source_without_its_cost_counts_as_unpriced() -> None:
    assert total_usage([_usage(None, "estimated")])["costSource"] == "unpriced"


def test_replies_without_usage_add_nothing_and_no_replies_cost_zero() -> None:
    assert total_usage([None, {}]) == total_usage([]) == {
        "firstTokenMs": 0, "totalMs": 0, "costMicroUsd": 0, "costSource": "estimated",
    }  # fmt: skip


def test_estimated_tokens_in_any_reply_mark_the_total() -> None:
    assert total_usage([_usage(1, "estimated", tokensEstimated=True), _usage(1, "estimated")])["tokensEstimated"]
    assert "tokensEstimated" not in total_usage([_usage(1, "estimated")])
