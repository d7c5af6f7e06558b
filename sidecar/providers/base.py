"""The provider protocol, its settings and usage values, and the one error type every provider raises."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

ErrorType = Literal[
    "auth", "rate_limit", "validation", "context_length", "configuration", "timeout", "provider", "network", "unknown"
]

ERROR_TYPES: tuple[ErrorType, ...] = (
    "auth",
    "rate_limit",
    "validation",
    "context_length",
    "configuration",
    "timeout",
    "provider",
    "network",
    "unknown",
)
RETRYABLE_ERROR_TYPES: frozenset[str] = frozenset({"rate_limit", "timeout", "provider", "network"})
# Listing models checks a key and base URL while the user waits: an unreachable endpoint must answer promptly.
MODEL_LIST_TIMEOUT_S = 10.0
MAX_LISTED_MODELS = 5000  # a server that pages forever still ends

# Written for end users: they name no class, body, URL or key, and say what to do next.
FRIENDLY_MESSAGES: dict[str, str] = {
    "auth": "The provider rejected the API key. Check the key in this agent's LLM settings.",
    "rate_limit": "The provider is rate-limiting requests. Try again in a moment.",
    "validation": "The provider rejected the request as invalid. Check this agent's model and sampling settings.",
    "context_length": "The conversation is too long for this agent's model. Exclude some messages, start a new "
    "conversation, or set a larger context window in the agent's settings.",
    "configuration": "The provider could not find this model or endpoint. "
    "Check the model name and base URL in this agent's LLM settings.",
    "timeout": "The provider took too long to respond. Try again in a moment.",
    "provider": "The provider had a problem answering. Try again in a moment.",
    "network": "Could not reach the provider. Check the network connection and the base URL in this agent's "
    "LLM settings.",
    "unknown": "Something unexpected went wrong while calling the provider.",
}


@dataclass(frozen=True)
class ProviderSettings:
    """What a provider needs from an llm config: the key is resolved by the caller (keyring or memory)."""

    provider: str  # a name in `registry.PROVIDERS`
    base_url: str | None
    api_key: str | None
    use_auth_header: bool = True

    def __repr__(self) -> str:
        # The dataclass repr would print the key into logs and tracebacks.
        key = "set" if self.api_key else None
        return (
            f"ProviderSettings(provider={self.provider!r}, base_url={self.base_url!r}, api_key={key!r}, "
            f"use_auth_header={self.use_auth_header!r})"
        )


@dataclass(frozen=True)
class Usage:
    """What the provider reported about one call; None where it said nothing.

    One meaning for every provider: ``input_tokens`` counts all input, cached included (each provider's module
    adds up its own fields); ``cached_input_tokens`` is the part read from a prompt cache and
    ``reasoning_tokens`` the part of ``output_tokens`` spent on hidden reasoning. ``cost_micro_usd`` is a cost
    the server reported itself (routers such as OpenRouter do), in millionths of a US dollar.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_micro_usd: int | None = None


# Why a reply ended (CONTRACT §5 "How a reply ends"); each provider maps its own reasons onto these.
StopReason = Literal["end", "max_tokens", "content_filter"]


@dataclass(frozen=True)
class StreamEnd:
    """The last item of every stream: it proves the provider finished (a stream without it was dropped)."""

    usage: Usage | None
    stop_reason: StopReason | None


class ProviderError(Exception):
    """A failed provider call, already classified; ``str(exc)`` is the end-user text (``safe_message``).

    ``retryable`` and ``safe_message`` default from the error type (the contract's table).
    ``retry_after_s`` comes from the provider's ``retry-after-ms`` / ``Retry-After`` headers when it sent one.
    ``overflow_tokens`` (``context_length`` only): by how much the prompt exceeded the model's context, if known.
    """

    def __init__(
        self,
        error_type: ErrorType,
        *,
        retryable: bool | None = None,
        status_code: int | None = None,
        retry_after_s: float | None = None,
        safe_message: str | None = None,
        overflow_tokens: int | None = None,
    ) -> None:
        self.error_type: ErrorType = error_type if error_type in FRIENDLY_MESSAGES else "unknown"
        self.retryable = self.error_type in RETRYABLE_ERROR_TYPES if retryable is None else retryable
        self.status_code = status_code
        self.retry_after_s = retry_after_s
        self.safe_message = safe_message or FRIENDLY_MESSAGES[self.error_type]
        # context_length: how many tokens the prompt was over the model's limit, when the provider said so.
        self.overflow_tokens = overflow_tokens
        super().__init__(self.safe_message)

    def __repr__(self) -> str:
        return (
            f"ProviderError({self.error_type!r}, retryable={self.retryable}, status_code={self.status_code}, "
            f"retry_after_s={self.retry_after_s})"
        )


class Provider(Protocol):
    """One configured LLM endpoint; safe to stream several bodies at once.

    ``stream`` is an async generator: use it as ``async with contextlib.aclosing(p.stream(body)) as chunks``
    so an early exit or a cancellation closes the HTTP response at once. It yields non-empty text deltas, then
    exactly one `StreamEnd` as the last item, and raises `ProviderError` for every failure (a stream that stops
    before the provider's final event is a "network" failure); cancellation propagates untouched.
    """

    def stream(self, body: dict[str, Any]) -> AsyncIterator[str | StreamEnd]: ...

    async def list_models(self) -> list[str]:
        """The ids of the models the endpoint offers, from its models endpoint (never a completion call), paged as
        the SDK pages. Each request is bounded by `MODEL_LIST_TIMEOUT_S` with no SDK retries, the list by
        `MAX_LISTED_MODELS`; every failure is a `ProviderError`, classified as a turn's would be."""
        ...

    async def aclose(self) -> None: ...


def omitted_env_headers(variable: str, omit: Any) -> dict[str, Any]:
    """``{name: omit}`` for each header an SDK would take from ``variable`` (``Name: value`` lines).

    Both SDKs add headers from such a variable to every request; a desktop app's environment is the user's
    shell's, so those headers (tokens for some proxy) must not travel to whatever base URL a config names.
    """
    raw = os.environ.get(variable, "")
    return {line.split(":", 1)[0].strip(): omit for line in raw.split("\n") if ":" in line}


def is_whole_json_body(headers: Any) -> bool:
    """Whether a response to a streaming request is one complete JSON message instead of server-sent events.

    Some OpenAI- and Anthropic-compatible servers answer ``"stream": true`` that way; the SDKs' stream classes
    would read no event from it.
    """
    media_type = str(headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


async def collect_model_ids(models: AsyncIterator[Any]) -> list[str]:
    """The ids of an SDK's paged model list, at most `MAX_LISTED_MODELS` (a server that pages forever still ends)."""
    ids: list[str] = []
    async for model in models:
        model_id = getattr(model, "id", None)  # built without validation: a server may leave it out
        if isinstance(model_id, str) and model_id:
            ids.append(model_id)
        if len(ids) >= MAX_LISTED_MODELS:
            break
    return ids
