"""The exact request body each provider is sent for one agent call (no credentials: those live in the client)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sidecar.chat.sampling import Sampling
from storage.records import ParticipantRecord

if TYPE_CHECKING:
    from sidecar.chat.context import ContextMessage

# Anthropic requires at least one message (and some OpenAI-compatible servers need a user turn): used
# only in the request when the history has nothing a model may see.
OPENING_TURN = "(The conversation is just starting. Please open it.)"


class MissingLlmConfig(ValueError):
    """The agent has no LLM config (or one with a provider this sidecar does not know)."""


def build_request(
    target: ParticipantRecord, system_prompt: str, messages: list[ContextMessage], sampling: Sampling
) -> dict[str, Any]:
    """The JSON body posted to the provider as is (the SDK client adds only auth and headers)."""
    if target.llm_config is None:
        raise MissingLlmConfig("The agent has no LLM configuration.")
    provider = target.llm_config.provider
    turns = [{"role": m.role, "content": m.content} for m in messages]
    if provider == "openai":
        return _openai_body(target.model, system_prompt, turns or _opening(), sampling)
    if provider == "anthropic":
        return _anthropic_body(target.model, system_prompt, turns or _opening(), sampling)
    if provider == "demo":
        agent = {"name": target.agent_name, "role": target.role.name}
        return {"model": target.model, "agent": agent, "system": system_prompt, "messages": turns}
    raise MissingLlmConfig(f"Unknown provider {provider!r}.")


def _opening() -> list[dict[str, str]]:
    return [{"role": "user", "content": OPENING_TURN}]


def _openai_body(model: str, system_prompt: str, turns: list[dict[str, str]], sampling: Sampling) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "system", "content": system_prompt}, *turns],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if sampling.uses_max_completion_tokens:
        body["max_completion_tokens"] = sampling.max_tokens
        return body
    _add_sampling(body, sampling)
    body["max_tokens"] = sampling.max_tokens
    return body


def _anthropic_body(model: str, system_prompt: str, turns: list[dict[str, str]], sampling: Sampling) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "system": system_prompt,
        "messages": turns,
        "max_tokens": sampling.max_tokens,
        "stream": True,
    }
    _add_sampling(body, sampling)
    return body


def _add_sampling(body: dict[str, Any], sampling: Sampling) -> None:
    if sampling.temperature is not None:
        body["temperature"] = sampling.temperature
    if sampling.top_p is not None:
        body["top_p"] = sampling.top_p
