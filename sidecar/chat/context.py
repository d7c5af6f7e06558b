"""A conversation's history → the system prompt, alternating messages and request body one agent is sent."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sidecar.catalogue import context_window
from sidecar.chat.budget import Limits, TriggerTooLong, fit_newest_first
from sidecar.chat.prompts import build_system_prompt
from sidecar.chat.request_bodies import MissingLlmConfig, build_request
from sidecar.chat.sampling import resolve_sampling
from sidecar.chat.speakers import mentioned
from sidecar.chat.tokens import PER_MESSAGE_TOKENS, Calibration, estimate_raw
from storage.records import MessageRecord, ParticipantRecord

# An agent reply whose conversation agent is not among the participants (a caller passing a partial list).
UNKNOWN_AGENT_NAME = "Unknown agent"
# Providers want the first turn to be the user's and the last one too; these fill the gap.
UNDER_WAY_TURN = "(The conversation is already under way.)"
CONTINUE_TURN = "(Please continue the conversation.)"
# `budget.droppedMessageIds` lists at most this many (the dropped messages nearest the kept ones, newest first):
# everything older than the oldest kept message is dropped too, and a turn never reads a whole long history.
MAX_DROPPED_IDS = 100


class TriggerNotFound(ValueError):
    """The triggering message id is not in the history given."""


class ContextTooLong(ValueError):
    """The triggering message alone does not fit the agent's budget: no call may be made (`context_length`)."""

    def __init__(self, tokens: int, limit: int) -> None:
        super().__init__("The triggering message does not fit this agent's context budget.")
        self.tokens = tokens  # the system prompt and the trigger
        self.limit = limit  # the input limit (window − max output − margin)


@dataclass(frozen=True)
class Counting:
    """How a context is counted and fitted: the engine's per-model calibration, a cap on the history's tokens
    (the one retry after a provider's overflow), and the visible rows older than the history given (a bounded
    read stopped before them: they are all dropped)."""

    calibration: Calibration | None = None
    history_cap: float | None = None
    older_visible: int = 0
    older_visible_ids: tuple[str, ...] = ()  # the newest of those, newest first


@dataclass(frozen=True)
class BudgetReport:
    context_window: int
    reserved_output: int
    system_tokens: int
    history_tokens: int
    kept_count: int
    dropped_count: int
    dropped_message_ids: tuple[str, ...]
    input_limit: int  # what the system prompt and history may take: the `limit` of the `thinking` update
    estimated: bool = True  # no exact tokenizer is available offline

    @property
    def tokens(self) -> int:
        return self.system_tokens + self.history_tokens


@dataclass(frozen=True)
class ContextMessage:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class AgentContext:
    system_prompt: str
    messages: tuple[ContextMessage, ...]
    provider: str
    model: str
    request: dict[str, Any]
    budget: BudgetReport
    raw_input_tokens: float = 0.0  # the uncalibrated estimate of the whole request, to calibrate from usage


def select_snapshot(history: list[MessageRecord], trigger_id: str | None) -> list[MessageRecord]:
    """Rows up to and including the trigger, without any reply to it (siblings never see each other)."""
    rows = _in_order(history)
    if trigger_id is None:
        return rows
    position = next((i for i, row in enumerate(rows) if row.id == trigger_id), None)
    if position is None:
        raise TriggerNotFound(f"Message {trigger_id} is not in this conversation's history.")
    return [row for row in rows[: position + 1] if row.reply_to_id != trigger_id]


def build_messages(
    target: ParticipantRecord, participants: list[ParticipantRecord], history: list[MessageRecord]
) -> list[ContextMessage]:
    """Visible rows as user/assistant turns, merged so roles alternate and the list starts and ends on `user`."""
    names = {p.conversation_agent_id: p.agent_name for p in participants}
    turns = _merge(_as_turn(row, target, names) for row in _in_order(history) if _visible(row))
    if not turns:
        return []
    if turns[0].role == "assistant":
        turns.insert(0, ContextMessage("user", UNDER_WAY_TURN))
    if turns[-1].role == "assistant":
        turns.append(ContextMessage("user", CONTINUE_TURN))
    return turns


def build_agent_context(
    target: ParticipantRecord,
    participants: list[ParticipantRecord],
    history: list[MessageRecord],
    trigger_id: str | None,
    auto_run: AutoRunFacts | None = None,
    counting: Counting = Counting(),
) -> AgentContext:
    """Everything one call for `target` sends, its history fitted to the agent's budget (§5c); raises
    TriggerNotFound, MissingLlmConfig or ContextTooLong (all ValueError).

    `auto_run`: the call is a speaker turn of an auto run (its system prompt explains the conversation).
    """
    snapshot = select_snapshot(history, trigger_id)  # an unknown trigger is reported before a missing config
    if target.llm_config is None:
        raise MissingLlmConfig("The agent has no LLM configuration.")
    provider = target.llm_config.provider
    system_prompt = build_system_prompt(target, participants, auto_mode=auto_run is not None)
    sampling = resolve_sampling(target, provider, target.model)
    factor = factor_for(counting.calibration, provider, target.model)
    limits = limits_for(target, provider, system_prompt, factor)
    kept, budget = _fit(target, participants, snapshot, trigger_id, limits, factor, counting)
    messages = build_messages(target, participants, kept)
    request = build_request(target, system_prompt, messages, sampling, _scene(target, participants, snapshot, auto_run))
    raw_input = estimate_raw(system_prompt) + sum(estimate_raw(m.content) for m in messages)
    raw_input += PER_MESSAGE_TOKENS * (len(messages) + 1)
    return AgentContext(system_prompt, tuple(messages), provider, target.model, request, budget, raw_input)


def _fit(
    target: ParticipantRecord,
    participants: list[ParticipantRecord],
    snapshot: list[MessageRecord],
    trigger_id: str | None,
    limits: Limits,
    factor: float,
    counting: Counting,
) -> tuple[list[MessageRecord], BudgetReport]:
    """The visible rows that fit the budget (oldest first) and the report of what was kept and dropped."""
    names = {p.conversation_agent_id: p.agent_name for p in participants}
    visible = [row for row in _in_order(snapshot) if _visible(row)]
    costs = [factor * row_cost(_as_turn(row, target, names).content) for row in visible]
    limit = float(limits.history_limit)
    if counting.history_cap is not None:
        limit = min(limit, counting.history_cap)
    keep_trigger = trigger_id is not None and bool(visible) and visible[-1].id == trigger_id
    try:
        kept_count = fit_newest_first(costs, limit, keep_trigger)
    except TriggerTooLong as too_long:
        raise ContextTooLong(limits.system_tokens + math.ceil(too_long.tokens), limits.input_limit) from None
    kept = visible[len(visible) - kept_count :]
    dropped = visible[: len(visible) - kept_count]
    report = BudgetReport(
        context_window=limits.context_window,
        reserved_output=limits.reserved_output,
        system_tokens=limits.system_tokens,
        history_tokens=math.ceil(sum(costs[len(costs) - kept_count :])),
        kept_count=kept_count,
        dropped_count=len(dropped) + counting.older_visible,  # rows not read are not sent
        dropped_message_ids=(*(row.id for row in reversed(dropped)), *counting.older_visible_ids)[:MAX_DROPPED_IDS],
        input_limit=limits.input_limit,
    )
    return kept, report


def row_cost(content: str) -> float:
    """The uncalibrated tokens one message takes in a request: its text as the model sees it, and its framing."""
    return estimate_raw(content) + PER_MESSAGE_TOKENS


def run_fits(
    target: ParticipantRecord,
    participants: list[ParticipantRecord],
    own_rows: list[MessageRecord],
    calibration: Calibration | None,
    share: float,
) -> bool:
    """Whether an auto run's own messages still fit in `share` of `target`'s history budget (§5b `context_full`):
    older history may be trimmed, the run's own conversation may not."""
    if target.llm_config is None:
        return True  # its turn fails as `configuration`; that stops the run
    provider = target.llm_config.provider
    factor = factor_for(calibration, provider, target.model)
    names = {p.conversation_agent_id: p.agent_name for p in participants}
    limits = limits_for(target, provider, build_system_prompt(target, participants, auto_mode=True), factor)
    cost = sum(factor * row_cost(_as_turn(row, target, names).content) for row in own_rows if _visible(row))
    return cost <= share * limits.history_limit


def factor_for(calibration: Calibration | None, provider: str, model: str) -> float:
    return calibration.factor((provider, model)) if calibration is not None else 1.0


def limits_for(target: ParticipantRecord, provider: str, system_prompt: str, factor: float) -> Limits:
    """The agent's window (its own, the catalogue's or the default), its call's max output, its system prompt."""
    return Limits(
        context_window(provider, target.model, target.context_window),
        resolve_sampling(target, provider, target.model).max_tokens,
        math.ceil(factor * (estimate_raw(system_prompt) + PER_MESSAGE_TOKENS)),
    )


@dataclass(frozen=True)
class AutoRunFacts:
    spoken_in_run: int  # how many times this agent has already spoken in this run


def _scene(
    target: ParticipantRecord,
    participants: list[ParticipantRecord],
    snapshot: list[MessageRecord],
    auto_run: AutoRunFacts | None,
) -> dict[str, Any]:
    """What the demo provider answers from: the last user message, who the answered message addresses."""
    visible = [row for row in _in_order(snapshot) if _visible(row)]
    last_user = next((row.content for row in reversed(visible) if row.role == "user"), None)
    scene: dict[str, Any] = {"lastUserMessage": last_user}
    if visible:
        enabled = [p for p in participants if p.enabled and p.conversation_agent_id != target.conversation_agent_id]
        named = mentioned(enabled, visible[-1].content, visible[-1].conversation_agent_id)
        if named:
            scene["address"] = named[0].agent_name
    if auto_run is not None:
        scene["spokenInRun"] = auto_run.spoken_in_run
    return scene


def to_wire(ctx: AgentContext) -> dict[str, Any]:
    """The `buildAgentContext` result shape."""
    return {
        "systemPrompt": ctx.system_prompt,
        "messages": [{"role": m.role, "content": m.content} for m in ctx.messages],
        "provider": ctx.provider,
        "model": ctx.model,
        "request": copy.deepcopy(ctx.request),
        "budget": budget_to_wire(ctx.budget),
    }


def budget_to_wire(budget: BudgetReport) -> dict[str, Any]:
    return {
        "contextWindow": budget.context_window,
        "reservedOutput": budget.reserved_output,
        "systemTokens": budget.system_tokens,
        "historyTokens": budget.history_tokens,
        "keptCount": budget.kept_count,
        "droppedCount": budget.dropped_count,
        "droppedMessageIds": list(budget.dropped_message_ids),
        "estimated": budget.estimated,
    }


def thinking_context(budget: BudgetReport) -> dict[str, int]:
    """The `context` of the `thinking` update."""
    return {"tokens": budget.tokens, "limit": budget.input_limit, "droppedCount": budget.dropped_count}


def _in_order(history: list[MessageRecord]) -> list[MessageRecord]:
    # Sorted here too: callers usually pass rows in order, but the rule must not depend on it.
    # A later version of a reply shares its first version's createdAt and takes that version's place.
    return sorted(history, key=lambda row: (row.created_at, row.version_of_id or row.id, row.version))


def _visible(row: MessageRecord) -> bool:
    return row.included and row.status == "complete" and row.role != "system" and bool(row.content.strip())


def _as_turn(row: MessageRecord, target: ParticipantRecord, names: dict[str, str]) -> ContextMessage:
    if row.role == "user":
        return ContextMessage("user", row.content)
    if row.conversation_agent_id == target.conversation_agent_id:
        return ContextMessage("assistant", row.content)
    name = names.get(row.conversation_agent_id or "", UNKNOWN_AGENT_NAME)
    return ContextMessage("user", f"{name}: {row.content}")


def _merge(turns: Iterable[ContextMessage]) -> list[ContextMessage]:
    merged: list[ContextMessage] = []
    for turn in turns:
        if merged and merged[-1].role == turn.role:
            merged[-1] = ContextMessage(turn.role, f"{merged[-1].content}\n\n{turn.content}")
        else:
            merged.append(turn)
    return merged
