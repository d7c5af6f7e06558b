"""`conversations:contextUsage` (CONTRACT §4, §5c): how full each enabled agent's context would be on its next call,
over its system prompt and the whole visible history before any trimming, counted as `context` counts a call.

The estimate is linear in a text's code points and UTF-8 bytes, so the per-author sums the database keeps give the
same count as adding up every message, without reading one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sidecar.chat.budget import Limits
from sidecar.chat.context import UNKNOWN_AGENT_NAME, factor_for, limits_for
from sidecar.chat.prompts import build_system_prompt
from sidecar.chat.request_bodies import MissingLlmConfig
from sidecar.chat.speakers import in_order
from sidecar.chat.tokens import PER_MESSAGE_TOKENS, Calibration, estimate_raw, estimate_sizes
from storage.records import ParticipantRecord


def context_usage(
    participants: list[ParticipantRecord],
    sizes: Mapping[str | None, tuple[int, int, int]],
    calibration: Calibration | None = None,
) -> list[dict[str, Any]]:
    """The wire rows, one per enabled agent with an llm config (without one, its turn fails as `configuration`).
    `ratio` = tokens / the input limit: it passes 1 exactly when the next call would drop messages."""
    by_author = {author: TextSizes(*size) for author, size in sizes.items()}
    rows = []
    for target in in_order(participants):
        if target.llm_config is None:
            continue
        tokens, limits = whole_history_tokens(target, participants, by_author, calibration)
        rows.append({
            "conversationAgentId": target.conversation_agent_id,
            "agentName": target.agent_name,
            "model": target.model,
            "contextWindow": limits.context_window,
            "tokens": tokens,
            "ratio": round(tokens / max(1, limits.input_limit), 4),
            "estimated": True,
        })
    return rows


@dataclass(frozen=True)
class TextSizes:
    """The visible rows of one author (a conversation agent id, or None for user rows): count, code points, bytes."""

    count: int
    chars: int
    utf8_bytes: int


def whole_history_tokens(
    target: ParticipantRecord,
    participants: list[ParticipantRecord],
    sizes: Mapping[str | None, TextSizes],
    calibration: Calibration | None = None,
) -> tuple[int, Limits]:
    """`conversations:contextUsage` for one agent: the system prompt and the whole visible history, before any
    trimming, counted like `build_agent_context` counts (the estimate is linear, so sums of sizes suffice); and
    the agent's limits. Raises MissingLlmConfig."""
    if target.llm_config is None:
        raise MissingLlmConfig("The agent has no LLM configuration.")
    provider = target.llm_config.provider
    factor = factor_for(calibration, provider, target.model)
    system_prompt = build_system_prompt(target, participants, auto_mode=False)
    names = {p.conversation_agent_id: p.agent_name for p in participants}
    raw = 0.0
    for author, size in sizes.items():
        raw += estimate_sizes(size.chars, size.utf8_bytes) + PER_MESSAGE_TOKENS * size.count
        if author is not None and author != target.conversation_agent_id:
            raw += estimate_raw(f"{names.get(author, UNKNOWN_AGENT_NAME)}: ") * size.count
    limits = limits_for(target, provider, system_prompt, factor)
    return limits.system_tokens + math.ceil(factor * raw), limits
