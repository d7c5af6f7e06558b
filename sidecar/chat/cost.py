"""What replies cost (CONTRACT v2 §4 `Usage`): one reply's token counts and price, and the totals of many.

Token counts are the provider's. What it did not report is estimated (`tokens.estimate_text_tokens`: the input
from the request body, the output from the reply's text) and the usage says so with ``tokensEstimated: true``.

Cost is in whole micro-dollars (a price in US dollars per million tokens times a token count *is* micro-dollars),
rounded half up once per reply, so totals are exact sums of what the replies show. ``costSource``:

    reported   the server reported what it charged (``usage.cost``, as OpenAI-compatible routers send)
    estimated  token counts × the model catalogue's price: input at the input price except the cached part, at the
               cached-input price when the catalogue has one; output (reasoning included) at the output price
    unpriced   the catalogue has no price for the model: no ``costMicroUsd`` at all, never a made-up number
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal

from sidecar.chat.tokens import PER_MESSAGE_TOKENS, estimate_text_tokens

if TYPE_CHECKING:
    from sidecar.catalogue import Pricing
    from sidecar.providers.base import Usage

CostSource = Literal["reported", "estimated", "unpriced"]
TOKEN_FIELDS = ("inputTokens", "outputTokens", "cachedInputTokens", "reasoningTokens")
TIMING_FIELDS = ("firstTokenMs", "totalMs")


def price_micro_usd(pricing: Pricing, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> int:
    """The catalogue price of these tokens; ``input_tokens`` includes the cached ones."""
    cached = min(cached_input_tokens, input_tokens)
    cached_price = pricing.cached_input_per_mtok
    exact = (
        _dollars(pricing.input_per_mtok) * (input_tokens - cached)
        + _dollars(pricing.input_per_mtok if cached_price is None else cached_price) * cached
        + _dollars(pricing.output_per_mtok) * output_tokens
    )
    return int(exact.to_integral_value(ROUND_HALF_UP))


def estimated_input_tokens(body: Mapping[str, Any]) -> int:
    """The estimated input of a request body: its system prompt (Anthropic's top-level ``system``; OpenAI's is
    the first message) and every message, each with its per-message overhead."""
    contents = [body["system"]] if body.get("system") else []
    contents += [message.get("content") for message in body.get("messages") or () if isinstance(message, Mapping)]
    return sum(estimate_text_tokens(_text_of(content)) + PER_MESSAGE_TOKENS for content in contents)


def reply_usage(
    reported: Usage | None, request: Mapping[str, Any] | None, reply_text: str, pricing: Pricing | None
) -> dict[str, Any]:
    """The token and cost fields of one reply's wire `Usage` (its timings are the caller's).

    ``reported`` is what the provider said (None: nothing), ``request`` the body that was sent (None: no call was
    made, so no input to estimate), ``pricing`` the catalogue's price for the model (None: unpriced).
    """
    input_tokens = reported.input_tokens if reported else None
    output_tokens = reported.output_tokens if reported else None
    estimated = False
    if input_tokens is None and request is not None:
        input_tokens, estimated = estimated_input_tokens(request), True
    if output_tokens is None:
        output_tokens, estimated = estimate_text_tokens(reply_text), True
    usage: dict[str, Any] = {"outputTokens": output_tokens}
    if input_tokens is not None:
        usage["inputTokens"] = input_tokens
    if reported and reported.cached_input_tokens is not None:
        usage["cachedInputTokens"] = reported.cached_input_tokens
    if reported and reported.reasoning_tokens is not None:
        usage["reasoningTokens"] = reported.reasoning_tokens
    if estimated:
        usage["tokensEstimated"] = True
    if reported and reported.cost_micro_usd is not None:
        usage.update(costMicroUsd=reported.cost_micro_usd, costSource="reported")
    elif pricing is not None and input_tokens is not None:
        cost = price_micro_usd(pricing, input_tokens, output_tokens, usage.get("cachedInputTokens") or 0)
        usage.update(costMicroUsd=cost, costSource="estimated")
    else:
        usage["costSource"] = "unpriced"
    return usage


def total_usage(usages: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """The sum of many replies' stored usage: every count and timing is the sum over the replies that have it.

    A reply without usage (imported from a file that had none) adds nothing; one whose usage has no price
    (``unpriced``, or saved before costs were recorded) makes the total ``unpriced``, and the total's
    ``costMicroUsd`` — present when at least one reply was priced — then covers only the priced replies.
    Otherwise the total is ``reported`` when every reply's cost was, else ``estimated`` (so also with no replies,
    whose cost is 0). ``tokensEstimated`` is set when any reply's tokens were estimated.
    """
    total: dict[str, Any] = dict.fromkeys(TIMING_FIELDS, 0)
    sources: set[str] = set()
    cost = 0
    for usage in usages:
        if not usage:
            continue
        for field in (*TOKEN_FIELDS, *TIMING_FIELDS):
            if _is_count(usage.get(field)):
                total[field] = total.get(field, 0) + usage[field]
        if usage.get("tokensEstimated") is True:
            total["tokensEstimated"] = True
        source = _cost_source(usage)
        sources.add(source)
        if source != "unpriced":
            cost += usage["costMicroUsd"]
    if sources != {"unpriced"}:
        total["costMicroUsd"] = cost
    total["costSource"] = (
        "unpriced" if "unpriced" in sources else "reported" if sources == {"reported"} else "estimated"
    )
    return total


def _cost_source(usage: Mapping[str, Any]) -> CostSource:
    if not _is_count(usage.get("costMicroUsd")):
        return "unpriced"  # unpriced, saved before costs were recorded, or a priced source without its cost
    source = usage.get("costSource")
    return "reported" if source == "reported" else "estimated" if source == "estimated" else "unpriced"


def _text_of(content: Any) -> str:
    """A message content as text: a string, or the text blocks of a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b["text"] for b in content if isinstance(b, Mapping) and isinstance(b.get("text"), str))
    return ""


def _dollars(per_mtok: float) -> Decimal:
    # Through the float's shortest repr, so 0.15 is exactly 0.15 and the product exact micro-dollars.
    return Decimal(repr(per_mtok))


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
