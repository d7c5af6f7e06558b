"""An agent's sampling values: explicit settings, else derived from personality traits, clamped per provider.

Derivation from the effective traits (personality value + agent override, 0..100), linear:
    randomness     0 → temperature 0.2   100 → 1.2   (50 → 0.7, the default)
    focus          0 → top_p 1.0         100 → 0.5   (higher focus narrows the choice of words)
    responseLength 0 → 256 max tokens    100 → 4096
Without the agent's value or the trait: temperature 0.7, no top_p, 1024 max tokens.
"""

from __future__ import annotations

from sidecar.chat.prompts import effective_behaviors
from sidecar.providers.registry import PROVIDERS
from sidecar.providers.spec import Sampling, SamplingLimits
from storage.records import ParticipantRecord

DEFAULT_TEMPERATURE = 0.7
DEFAULT_MAX_TOKENS = 1024
# Reasoning tokens count against max_completion_tokens; a small derived budget can leave no visible reply.
REASONING_MIN_MAX_TOKENS = 4096
# A provider this sidecar does not know gets no limits here; building its request body refuses it.
_NO_LIMITS = SamplingLimits()


def _limits(provider: str) -> SamplingLimits:
    spec = PROVIDERS.get(provider)
    return _NO_LIMITS if spec is None else spec.sampling_limits


def is_reasoning_model(provider: str, model: str) -> bool:
    """A model that takes no temperature or top_p and uses max_completion_tokens (OpenAI o-series, gpt-5)."""
    return _limits(provider).is_reasoning_model(model)


def resolve_sampling(target: ParticipantRecord, provider: str, model: str) -> Sampling:
    """The sampling values a call for `target` uses on `provider`/`model`."""
    limits = _limits(provider)
    traits = effective_behaviors(target)
    max_tokens = target.max_tokens if target.max_tokens is not None else _derived_max_tokens(traits)
    if limits.is_reasoning_model(model):
        if target.max_tokens is None:
            max_tokens = max(max_tokens, REASONING_MIN_MAX_TOKENS)
        return Sampling(None, None, max_tokens, uses_max_completion_tokens=True)
    temperature = target.temperature if target.temperature is not None else _derived_temperature(traits)
    top_p = target.top_p if target.top_p is not None else _derived_top_p(traits)
    if limits.one_of_temperature_and_top_p and temperature is not None and top_p is not None:
        temperature, top_p = _one_of_temperature_and_top_p(target, temperature, top_p)
    return Sampling(
        temperature=_clamp_temperature(limits, temperature),
        top_p=None if top_p is None else min(1.0, max(0.0, top_p)),
        max_tokens=max(1, max_tokens),
        uses_max_completion_tokens=False,
    )


def _derived_temperature(traits: dict[str, int]) -> float:
    if "randomness" not in traits:
        return DEFAULT_TEMPERATURE
    return round(0.2 + traits["randomness"] / 100, 2)


def _derived_top_p(traits: dict[str, int]) -> float | None:
    if "focus" not in traits:
        return None
    return round(1.0 - traits["focus"] / 200, 3)


def _derived_max_tokens(traits: dict[str, int]) -> int:
    if "responseLength" not in traits:
        return DEFAULT_MAX_TOKENS
    return 256 + round(traits["responseLength"] * (4096 - 256) / 100)


def _one_of_temperature_and_top_p(
    target: ParticipantRecord, temperature: float, top_p: float
) -> tuple[float | None, float | None]:
    """Newer Claude models reject temperature and top_p together: keep both only if the agent set both."""
    explicit_temperature = target.temperature is not None
    explicit_top_p = target.top_p is not None
    if explicit_temperature == explicit_top_p:
        return (temperature, top_p) if explicit_temperature else (temperature, None)
    return (temperature, None) if explicit_temperature else (None, top_p)


def _clamp_temperature(limits: SamplingLimits, temperature: float | None) -> float | None:
    if temperature is None:
        return None
    return min(limits.max_temperature, max(0.0, temperature))
