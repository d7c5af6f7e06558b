"""An agent's context budget (CONTRACT v2 §5c) and fitting a history into it, newest first. Pure.

    context window  = the agent's `contextWindow`, else the model catalogue's, else 8,192
    input limit     = window − the call's max output tokens − a 5 % margin
    history limit   = input limit − the system prompt's tokens

Messages are kept newest first while they fit; fitting stops at the first one that does not (an older, smaller
message is never taken past a gap, so the kept history is always one unbroken stretch ending at the newest). The
triggering message is always kept; when it alone does not fit, the call must not be made (`TriggerTooLong`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MARGIN_SHARE = 0.05
# The shrunk budget of the one automatic retry after a provider's overflow that gave no counts.
UNREPORTED_OVERFLOW_CUT = 0.25


@dataclass(frozen=True)
class Limits:
    context_window: int
    reserved_output: int  # the call's max output tokens
    system_tokens: int

    @property
    def margin(self) -> int:
        return math.ceil(self.context_window * MARGIN_SHARE)

    @property
    def input_limit(self) -> int:
        """What the system prompt and the history together may take."""
        return max(0, self.context_window - self.reserved_output - self.margin)

    @property
    def history_limit(self) -> int:
        return max(0, self.input_limit - self.system_tokens)


class TriggerTooLong(ValueError):
    """The triggering message alone is over the history limit."""

    def __init__(self, tokens: float, limit: float) -> None:
        super().__init__(f"the triggering message needs {math.ceil(tokens)} tokens; the budget is {math.floor(limit)}")
        self.tokens = tokens
        self.limit = limit


def fit_newest_first(costs: Sequence[float], limit: float, keep_newest: bool) -> int:
    """How many of the newest items fit in ``limit`` (``costs`` oldest first, so the kept ones are the last n).

    ``keep_newest``: the newest item is the trigger and must be kept; raises TriggerTooLong when it alone does not
    fit.
    """
    if keep_newest and costs and costs[-1] > limit:
        raise TriggerTooLong(costs[-1], limit)
    total = 0.0
    kept = 0
    for cost in reversed(costs):
        if total + cost > limit:
            break
        total += cost
        kept += 1
    return kept


def shrunk_cap(history_tokens: float, overflow_tokens: int | None) -> float:
    """The history cap of the one retry after a provider overflow: what was sent, less the overflow the provider
    reported, or 25 % less when it reported none."""
    if overflow_tokens is not None and overflow_tokens > 0:
        return max(0.0, history_tokens - overflow_tokens)
    return history_tokens * (1 - UNREPORTED_OVERFLOW_CUT)
