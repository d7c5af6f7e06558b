"""The exact request body each provider is sent for one agent call (no credentials: those live in the client)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sidecar.providers.base import ProviderError
from sidecar.providers.registry import spec_for
from sidecar.providers.spec import RequestParts, Sampling
from storage.records import ParticipantRecord

# Some APIs refuse an empty message list (Anthropic; some OpenAI-compatible servers need a user turn): used
# only in the request when the history has nothing a model may see.
OPENING_TURN = "(The conversation is just starting. Please open it.)"


class MissingLlmConfig(ValueError):
    """The agent has no LLM config (or one with a provider this sidecar does not know)."""


class Turn(Protocol):
    """One message of the context (`context.ContextMessage` is one)."""

    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


def build_request(
    target: ParticipantRecord,
    system_prompt: str,
    messages: Sequence[Turn],
    sampling: Sampling,
    scene: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body posted to the provider as is (the SDK client adds only auth and headers)."""
    if target.llm_config is None:
        raise MissingLlmConfig("The agent has no LLM configuration.")
    try:
        spec = spec_for(target.llm_config.provider)
    except ProviderError:
        raise MissingLlmConfig(f"Unknown provider {target.llm_config.provider!r}.") from None
    turns = [{"role": m.role, "content": m.content} for m in messages]
    if not turns and spec.requires_a_turn:
        turns = [{"role": "user", "content": OPENING_TURN}]
    parts = RequestParts(target.model, system_prompt, turns, sampling, target.agent_name, target.role.name, scene)
    return spec.build_body(parts)
