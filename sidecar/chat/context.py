"""A conversation's history → the system prompt, alternating messages and request body one agent is sent."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sidecar.chat.prompts import build_system_prompt
from sidecar.chat.request_bodies import MissingLlmConfig, build_request
from sidecar.chat.sampling import resolve_sampling
from storage.records import MessageRecord, ParticipantRecord

# An agent reply whose conversation agent is not among the participants (a caller passing a partial list).
UNKNOWN_AGENT_NAME = "Unknown agent"
# Providers want the first turn to be the user's and the last one too; these fill the gap.
UNDER_WAY_TURN = "(The conversation is already under way.)"
CONTINUE_TURN = "(Please continue the conversation.)"


class TriggerNotFound(ValueError):
    """The triggering message id is not in the history given."""


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
) -> AgentContext:
    """Everything one call for `target` sends; raises TriggerNotFound or MissingLlmConfig (both ValueError)."""
    snapshot = select_snapshot(history, trigger_id)  # an unknown trigger is reported before a missing config
    if target.llm_config is None:
        raise MissingLlmConfig("The agent has no LLM configuration.")
    messages = build_messages(target, participants, snapshot)
    system_prompt = build_system_prompt(target, participants)
    provider = target.llm_config.provider
    sampling = resolve_sampling(target, provider, target.model)
    request = build_request(target, system_prompt, messages, sampling)
    return AgentContext(system_prompt, tuple(messages), provider, target.model, request)


def to_wire(ctx: AgentContext) -> dict[str, Any]:
    """The `buildAgentContext` result shape."""
    return {
        "systemPrompt": ctx.system_prompt,
        "messages": [{"role": m.role, "content": m.content} for m in ctx.messages],
        "provider": ctx.provider,
        "model": ctx.model,
        "request": copy.deepcopy(ctx.request),
    }


def _in_order(history: list[MessageRecord]) -> list[MessageRecord]:
    # Sorted here too: callers usually pass rows in order, but the rule must not depend on it.
    return sorted(history, key=lambda row: (row.created_at, row.id))


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
