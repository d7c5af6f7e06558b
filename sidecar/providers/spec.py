"""What a provider module says about itself: one `ProviderSpec` per provider, listed by `registry`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sidecar.providers.base import Provider, ProviderError, ProviderSettings


@dataclass(frozen=True)
class Sampling:
    """The sampling values one call sends; None means "leave it out of the body"."""

    temperature: float | None
    top_p: float | None
    max_tokens: int
    uses_max_completion_tokens: bool


@dataclass(frozen=True)
class RequestParts:
    """Everything a request body is built from; ``turns`` already alternate user/assistant."""

    model: str
    system_prompt: str
    turns: list[dict[str, str]]
    sampling: Sampling
    agent_name: str
    agent_role: str
    # Facts about the conversation that a real API has no field for (only the demo provider reads them):
    # `lastUserMessage`, `address` (an agent the answered message named with @Name), `spokenInRun`.
    scene: dict[str, Any] | None = None


@dataclass(frozen=True)
class SamplingLimits:
    """What the provider's API accepts."""

    max_temperature: float = 2.0
    # Newer Claude models reject temperature and top_p together.
    one_of_temperature_and_top_p: bool = False
    # Models that take neither temperature nor top_p, and `max_completion_tokens` for their budget.
    reasoning_models: re.Pattern[str] | None = None

    def is_reasoning_model(self, model: str) -> bool:
        """A routed name like `openai/o3-mini` counts by its last segment."""
        if self.reasoning_models is None:
            return False
        return bool(self.reasoning_models.match(model.rsplit("/", 1)[-1].strip().lower()))


def sampling_fields(sampling: Sampling) -> dict[str, float]:
    """``temperature`` and ``top_p``, each only when set (both APIs spell them alike)."""
    fields = {"temperature": sampling.temperature, "top_p": sampling.top_p}
    return {name: value for name, value in fields.items() if value is not None}


def _unchanged(url: str) -> str:
    return url


@dataclass(frozen=True)
class ProviderSpec:
    """One provider, complete: its SDK, its request body, its limits, its base URL rule, its client and errors.

    End-of-stream detection lives in the `Provider` that ``open`` returns (see `base.Provider`).
    """

    name: str
    # Imported in a worker thread before the first client is built; None when nothing needs importing.
    sdk_module: str | None
    uses_api_key: bool
    build_body: Callable[[RequestParts], dict[str, Any]]
    open: Callable[[ProviderSettings], Provider]
    classify_error: Callable[[BaseException], ProviderError]
    sampling_limits: SamplingLimits = SamplingLimits()
    # Applied to a stripped, non-blank base URL before it is stored.
    normalize_base_url: Callable[[str], str] = _unchanged
    # The API refuses an empty `messages` list: an empty history gets an opening user turn.
    requires_a_turn: bool = True
