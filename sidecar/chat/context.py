"""A conversation's history → the system prompt, alternating messages and request body one agent is sent."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sidecar.chat.prompts import build_system_prompt
from sidecar.chat.request_bodies import MissingLlmConfig, build_request
from sidecar.chat.sampling import resolve_sampling
from sidecar.chat.speakers import mentioned
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
    auto_run: AutoRunFacts | None = None,
) -> AgentContext:
    """Everything one call for `target` sends; raises TriggerNotFound or MissingLlmConfig (both ValueError).

    `auto_run`: the call is a speaker turn of an auto run (its system prompt explains the conversation).
    """
    snapshot = select_snapshot(history, trigger_id)  # an unknown trigger is reported before a missing config
    if target.llm_config is None:
        raise MissingLlmConfig("The agent has no LLM configuration.")
    messages = build_messages(target, participants, snapshot)
    system_prompt = build_system_prompt(target, participants, auto_mode=auto_run is not None)
    provider = target.llm_config.provider
    sampling = resolve_sampling(target, provider, target.model)
    request = build_request(target, system_prompt, messages, sampling, _scene(target, participants, snapshot, auto_run))
    return AgentContext(system_prompt, tuple(messages), provider, target.model, request)


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
    }


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
