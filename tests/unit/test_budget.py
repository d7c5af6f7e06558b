"""Context budgets (CONTRACT §5c): limits, newest-first fitting, the shrunk retry's cap, token estimates and their
per-model calibration, and the classification of the providers' context overflow errors."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai
import pytest

from sidecar.chat.budget import Limits, TriggerTooLong, fit_newest_first, shrunk_cap
from sidecar.chat.context import ContextTooLong, Counting, build_agent_context
from sidecar.chat.tokens import MAX_FACTOR, MIN_FACTOR, Calibration, estimate_sizes, estimate_text_tokens
from sidecar.providers.registry import spec_for
from tests.unit.test_context import agent, msg

REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/x")

# --- limits and fitting -------------------------------------------------------------------------------------------


def test_the_history_limit_is_the_window_less_output_system_prompt_and_a_five_percent_margin() -> None:
    limits = Limits(context_window=8192, reserved_output=1024, system_tokens=300)
    assert limits.margin == 410  # ceil(8192 * 0.05)
    assert limits.input_limit == 8192 - 1024 - 410
    assert limits.history_limit == 8192 - 1024 - 410 - 300


def test_a_max_output_larger_than_the_window_leaves_no_history_budget() -> None:
    assert Limits(8192, 9000, 100).history_limit == 0


@pytest.mark.parametrize(
    ("costs", "limit", "kept"),
    [
        ([], 10, 0),
        ([3, 3, 3], 10, 3),
        ([3, 3, 3], 9, 3),  # exactly full still fits
        ([3, 3, 3], 8, 2),
        ([1, 9, 3], 10, 1),  # stops at the first that does not fit: the small oldest one is not taken past the gap
        ([5, 5, 5, 5], 0, 0),
    ],
)
def test_fitting_keeps_the_newest_while_they_fit(costs: list[float], limit: float, kept: int) -> None:
    assert fit_newest_first(costs, limit, keep_newest=False) == kept


def test_the_trigger_is_always_kept_when_it_fits_and_refused_when_it_alone_does_not() -> None:
    assert fit_newest_first([50, 10], 10, keep_newest=True) == 1
    with pytest.raises(TriggerTooLong) as caught:
        fit_newest_first([1, 11], 10, keep_newest=True)
    assert (caught.value.tokens, caught.value.limit) == (11, 10)


@pytest.mark.parametrize(
    ("sent", "overflow", "cap"), [(1000, 200, 800), (1000, None, 750), (1000, 0, 750), (100, 500, 0)]
)
def test_the_retry_cap_is_what_was_sent_less_the_overflow_or_a_quarter(
    sent: float, overflow: int | None, cap: float
) -> None:
    assert shrunk_cap(sent, overflow) == cap


# --- estimates and calibration ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("abcd", 1), ("abcde", 2), ("a" * 400, 100), ("日本語", 3), ("é" * 8, 5), ("🙂", 2)],
)
def test_the_estimate_counts_characters_and_extra_utf8_bytes(text: str, tokens: int) -> None:
    assert estimate_text_tokens(text) == tokens


def test_the_estimate_is_linear_so_sums_of_sizes_give_the_same_count() -> None:
    texts = ["Hello there", "日本語のテキスト", "naïve café"]
    chars = sum(len(t) for t in texts)
    size = sum(len(t.encode()) for t in texts)
    assert estimate_sizes(chars, size) == pytest.approx(sum(estimate_sizes(len(t), len(t.encode())) for t in texts))


def test_calibration_takes_the_first_report_then_moves_halfway_and_stays_bounded() -> None:
    calibration = Calibration()
    key = ("openai", "gpt-4o")
    assert calibration.factor(key) == 1.0
    calibration.observe(key, 100.0, 60)
    assert calibration.factor(key) == pytest.approx(0.6)
    calibration.observe(key, 100.0, 80)
    assert calibration.factor(key) == pytest.approx(0.7)
    calibration.observe(key, 100.0, 10_000)
    assert calibration.factor(key) <= MAX_FACTOR
    calibration.observe(("openai", "other"), 100.0, 1)
    assert calibration.factor(("openai", "other")) == MIN_FACTOR
    calibration.observe(("openai", "none"), 100.0, None)  # no usage reported: nothing learnt
    assert calibration.factor(("openai", "none")) == 1.0


# --- build_agent_context with a budget -----------------------------------------------------------------------------


def _history(sizes: list[int]) -> list[Any]:
    """User messages of `sizes` characters, oldest first, ids m0, m1, …"""
    return [msg(f"m{i}", "user", "x" * size, i) for i, size in enumerate(sizes)]


def test_the_context_keeps_the_newest_messages_and_reports_what_it_dropped() -> None:
    # A 2,000-token window with 200 output tokens: input limit 1,700; each message 100 + 4 tokens.
    ada = agent("ca-ada", "Ada", model="unknown-model", context_window=2000, max_tokens=200)
    history = _history([400] * 30)
    ctx = build_agent_context(ada, [ada], history, "m29")
    budget = ctx.budget
    assert (budget.context_window, budget.reserved_output, budget.input_limit) == (2000, 200, 1700)
    assert budget.kept_count == (1700 - budget.system_tokens) // 104
    assert budget.kept_count + budget.dropped_count == 30
    assert budget.dropped_message_ids[0] == f"m{29 - budget.kept_count}"  # the newest dropped first
    assert budget.history_tokens == budget.kept_count * 104
    assert budget.tokens <= budget.input_limit
    assert ctx.messages[-1].content.endswith("x" * 400)


def test_rows_not_read_count_as_dropped() -> None:
    ada = agent("ca-ada", "Ada", model="unknown-model", context_window=2000, max_tokens=200)
    ctx = build_agent_context(ada, [ada], _history([400] * 30), "m29", counting=Counting(older_visible=1000))
    assert ctx.budget.dropped_count == 1000 + 30 - ctx.budget.kept_count


def test_a_trigger_too_long_for_the_budget_is_refused_before_any_call() -> None:
    small = agent("ca-s", "Small", model="unknown-model", context_window=1000, max_tokens=100)
    big = agent("ca-b", "Big", model="unknown-model", context_window=100_000, max_tokens=100)
    history = _history([10, 8000])
    with pytest.raises(ContextTooLong) as caught:
        build_agent_context(small, [small, big], history, "m1")
    assert caught.value.tokens > caught.value.limit == 1000 - 100 - 50
    assert build_agent_context(big, [small, big], history, "m1").budget.kept_count == 2


def test_a_history_cap_shrinks_what_is_kept_and_calibration_scales_the_counts() -> None:
    ada = agent("ca-ada", "Ada", model="unknown-model", context_window=100_000, max_tokens=200)
    history = _history([400] * 10)
    whole = build_agent_context(ada, [ada], history, "m9").budget
    capped = build_agent_context(ada, [ada], history, "m9", counting=Counting(history_cap=3 * 104)).budget
    assert (whole.kept_count, capped.kept_count) == (10, 3)
    calibration = Calibration()
    calibration.observe(("openai", "unknown-model"), 100.0, 50)  # the provider counts half as many
    halved = build_agent_context(ada, [ada], history, "m9", counting=Counting(calibration)).budget
    assert halved.history_tokens == whole.history_tokens // 2


# --- classification of overflow errors -----------------------------------------------------------------------------


def _openai_overflow(message: str) -> Exception:
    # The OpenAI client passes the body's `error` object to the exception.
    body = {"message": message, "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}
    return openai.BadRequestError(message, response=httpx2.Response(400, request=REQUEST), body=body)


def _anthropic_overflow(message: str) -> Exception:
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    return anthropic.BadRequestError(message, response=httpx2.Response(400, request=REQUEST), body=body)


@pytest.mark.parametrize(
    ("provider", "exc", "overflow"),
    [
        ("openai", _openai_overflow("This model's maximum context length is 8192 tokens. However, your messages "
                                    "resulted in 9000 tokens. Please reduce the length of the messages."), 808),
        ("openai", _openai_overflow("Your input exceeds the context window of this model."), None),
        ("anthropic", _anthropic_overflow("prompt is too long: 210000 tokens > 200000 maximum"), 10000),
        ("anthropic", _anthropic_overflow("prompt is too long"), None),
    ],
    ids=["openai-counts", "openai-no-counts", "anthropic-counts", "anthropic-no-counts"],
)
def test_a_context_overflow_is_context_length_with_its_overflow(
    provider: str, exc: Exception, overflow: int | None
) -> None:
    error = spec_for(provider).classify_error(exc)
    assert (error.error_type, error.retryable, error.overflow_tokens) == ("context_length", False, overflow)
    assert "too long" in str(error) and "tokens" not in str(error)


@pytest.mark.parametrize(
    ("provider", "exc"),
    [
        ("openai", openai.BadRequestError("x", response=httpx2.Response(400, request=REQUEST),
                                          body={"message": "bad temperature", "code": "invalid_value"})),
        ("anthropic", _anthropic_overflow("messages: roles must alternate")),
    ],
)
def test_other_bad_requests_stay_validation(provider: str, exc: Exception) -> None:
    assert spec_for(provider).classify_error(exc).error_type == "validation"
