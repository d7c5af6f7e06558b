"""Plain frozen values that repositories return to the chat engine (never peewee models)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

MessageRole = Literal["user", "agent", "system"]
MessageStatus = Literal["complete", "streaming", "error", "cancelled", "interrupted"]


@dataclass(frozen=True)
class MessageRecord:
    id: str
    conversation_id: str
    conversation_agent_id: str | None
    role: MessageRole
    content: str
    included: bool
    status: MessageStatus
    reply_to_id: str | None
    created_at: int  # epoch milliseconds
    usage: dict[str, Any] | None = None
    stop_reason: str | None = None  # end | max_tokens | content_filter once a reply completes; else None
    version: int = 1  # this reply's number among its versions (1..version_count); 1 for user and system rows
    version_count: int = 1
    version_of_id: str | None = None  # the group label: the first version's id; None on the first version itself
    edited_at: int | None = None  # epoch milliseconds of the last messages:update, if any


@dataclass(frozen=True)
class RoleRecord:
    id: str
    name: str
    description: str
    system_prompt: str


@dataclass(frozen=True)
class PersonalityRecord:
    id: str
    name: str
    behaviors: dict[str, int] = field(default_factory=dict)
    custom_instructions: str = ""


@dataclass(frozen=True)
class LlmConfigRecord:
    id: str
    custom_name: str
    provider: str  # a provider name; the sidecar's provider registry knows which exist
    base_url: str | None
    use_auth_header: bool
    key_in_keychain: bool = False  # whether to look in the OS keychain for its key (never the key itself)
    max_concurrency: int = 8  # provider calls at once on this config


@dataclass(frozen=True)
class ParticipantRecord:
    """One agent as it takes part in one conversation, with everything a turn needs to call it."""

    conversation_agent_id: str
    conversation_id: str
    agent_id: str
    agent_name: str
    enabled: bool
    display_order: int
    model: str
    role: RoleRecord
    personality: PersonalityRecord
    llm_config: LlmConfigRecord | None  # None when the config row is gone
    system_prompt: str | None = None
    personality_behaviors: dict[str, int] | None = None  # agent overrides, -100..100, added to the personality's
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    timeout_ms: int = 60000
    context_window: int | None = None  # the agent's own window (tokens); None: the model catalogue's


@dataclass(frozen=True)
class ChatSettings:
    """How a conversation's agents answer (CONTRACT §5, §5b)."""

    mode: str  # "manual" | "round-robin" | "auto"
    max_messages: int = 12
    delay_ms: int = 0
    style: str = "sequential"  # "sequential" | "rounds"
