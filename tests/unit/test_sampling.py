"""Sampling: explicit values win, traits derive the rest, providers clamp, reasoning models drop temperature/top_p."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.chat.sampling import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    REASONING_MIN_MAX_TOKENS,
    Sampling,
    is_reasoning_model,
    resolve_sampling,
)
from storage.records import LlmConfigRecord, ParticipantRecord, PersonalityRecord, RoleRecord


def agent(behaviors: dict[str, int] | None = None, **kw: Any) -> ParticipantRecord:
    fields: dict[str, Any] = {
        "conversation_agent_id": "ca",
        "conversation_id": "conv",
        "agent_id": "ag",
        "agent_name": "Ada",
        "enabled": True,
        "display_order": 0,
        "model": "gpt-4o",
        "role": RoleRecord("r", "Helper", "", "Help."),
        "personality": PersonalityRecord("p", "P", behaviors or {}),
        "llm_config": LlmConfigRecord("cfg", "OpenAI", "openai", None, True),
    }
    return ParticipantRecord(**(fields | kw))


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("openai", "o1", True),
        ("openai", "o1-preview", True),
        ("openai", "o3", True),
        ("openai", "o3-mini", True),
        ("openai", "o4-mini", True),
        ("openai", "gpt-5", True),
        ("openai", "gpt-5-mini", True),
        ("openai", "gpt-5.1", True),
        ("openai", "GPT-5-nano", True),
        ("openai", "openai/o3-mini", True),
        ("openai", "gpt-4o", False),
        ("openai", "gpt-4.1-mini", False),
        ("openai", "omni-moderation", False),
        ("openai", "llama3.1:8b", False),
        ("anthropic", "o1", False),
        ("demo", "gpt-5", False),
    ],
)
def test_reasoning_models_are_the_openai_o_series_and_gpt_5_family(provider: str, model: str, expected: bool) -> None:
    assert is_reasoning_model(provider, model) is expected


def test_without_agent_values_or_traits_the_defaults_apply() -> None:
    assert resolve_sampling(agent(), "openai", "gpt-4o") == Sampling(
        DEFAULT_TEMPERATURE, None, DEFAULT_MAX_TOKENS, False
    )


@pytest.mark.parametrize(
    ("behaviors", "temperature", "top_p", "max_tokens"),
    [
        ({"randomness": 0}, 0.2, None, 1024),
        ({"randomness": 50}, 0.7, None, 1024),
        ({"randomness": 100}, 1.2, None, 1024),
        ({"focus": 0}, 0.7, 1.0, 1024),
        ({"focus": 50}, 0.7, 0.75, 1024),
        ({"focus": 100}, 0.7, 0.5, 1024),
        ({"responseLength": 0}, 0.7, None, 256),
        ({"responseLength": 50}, 0.7, None, 2176),
        ({"responseLength": 100}, 0.7, None, 4096),
        ({"randomness": 30, "focus": 80, "responseLength": 10, "humor": 99}, 0.5, 0.6, 640),
    ],
)
def test_traits_derive_sampling_linearly(
    behaviors: dict[str, int], temperature: float, top_p: float | None, max_tokens: int
) -> None:
    assert resolve_sampling(agent(behaviors), "openai", "gpt-4o") == Sampling(temperature, top_p, max_tokens, False)


def test_agent_overrides_shift_the_traits_sampling_is_derived_from() -> None:
    target = agent({"randomness": 90}, personality_behaviors={"randomness": 50, "focus": 40})
    assert resolve_sampling(target, "openai", "gpt-4o") == Sampling(1.2, 0.55, 1024, False)


def test_the_agents_explicit_values_win_over_traits() -> None:
    target = agent({"randomness": 100, "focus": 100, "responseLength": 100}, temperature=0.1, top_p=0.9, max_tokens=77)
    assert resolve_sampling(target, "openai", "gpt-4o") == Sampling(0.1, 0.9, 77, False)


@pytest.mark.parametrize(
    ("provider", "temperature", "expected"),
    [
        ("anthropic", 1.5, 1.0),
        ("anthropic", 2.0, 1.0),
        ("anthropic", 0.4, 0.4),
        ("openai", 2.0, 2.0),
        ("openai", 1.5, 1.5),
        ("demo", 1.5, 1.5),
    ],
)
def test_explicit_temperatures_are_clamped_to_what_the_provider_accepts(
    provider: str, temperature: float, expected: float
) -> None:
    assert resolve_sampling(agent(temperature=temperature), provider, "m").temperature == expected


def test_a_derived_temperature_above_one_is_clamped_for_anthropic() -> None:
    assert resolve_sampling(agent({"randomness": 100}), "anthropic", "claude-sonnet-4-5").temperature == 1.0


@pytest.mark.parametrize(
    ("explicit", "behaviors", "temperature", "top_p"),
    [
        pytest.param({}, {"randomness": 30, "focus": 80}, 0.5, None, id="both derived: temperature only"),
        pytest.param({"top_p": 0.8}, {"randomness": 30}, None, 0.8, id="explicit top_p beats derived temperature"),
        pytest.param({"temperature": 0.3}, {"focus": 80}, 0.3, None, id="explicit temperature beats derived top_p"),
        pytest.param({"temperature": 0.3, "top_p": 0.8}, {}, 0.3, 0.8, id="both explicit: both kept"),
        pytest.param({"top_p": 0.8}, {}, None, 0.8, id="explicit top_p beats the default temperature"),
    ],
)
def test_anthropic_gets_temperature_and_top_p_together_only_when_both_were_set_explicitly(
    explicit: dict[str, float], behaviors: dict[str, int], temperature: float | None, top_p: float | None
) -> None:
    result = resolve_sampling(agent(behaviors, **explicit), "anthropic", "claude-sonnet-4-5")
    assert (result.temperature, result.top_p) == (temperature, top_p)


def test_openai_keeps_derived_temperature_and_top_p_together() -> None:
    result = resolve_sampling(agent({"randomness": 30, "focus": 80}), "openai", "gpt-4o")
    assert (result.temperature, result.top_p) == (0.5, 0.6)


@pytest.mark.parametrize(
    ("kw", "behaviors", "max_tokens"),
    [
        pytest.param({}, {}, REASONING_MIN_MAX_TOKENS, id="default raised to the reasoning floor"),
        pytest.param({}, {"responseLength": 10}, REASONING_MIN_MAX_TOKENS, id="derived raised to the floor"),
        pytest.param({"max_tokens": 500}, {}, 500, id="explicit kept as set"),
        pytest.param({"temperature": 1.0, "top_p": 0.5}, {"randomness": 90}, REASONING_MIN_MAX_TOKENS, id="no temp"),
    ],
)
def test_reasoning_models_get_no_temperature_or_top_p_and_use_max_completion_tokens(
    kw: dict[str, Any], behaviors: dict[str, int], max_tokens: int
) -> None:
    assert resolve_sampling(agent(behaviors, **kw), "openai", "o3-mini") == Sampling(None, None, max_tokens, True)
