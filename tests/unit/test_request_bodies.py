"""Provider request bodies: the exact dict each SDK create call receives, per provider."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.chat.context import ContextMessage, build_agent_context
from sidecar.chat.request_bodies import OPENING_TURN, MissingLlmConfig, build_request
from sidecar.chat.sampling import Sampling
from storage.records import LlmConfigRecord, MessageRecord, ParticipantRecord, PersonalityRecord, RoleRecord


def agent(provider: str | None = "openai", model: str = "gpt-4o", **kw: Any) -> ParticipantRecord:
    config = None if provider is None else LlmConfigRecord("cfg", "Cfg", provider, None, True)  # type: ignore[arg-type]
    fields: dict[str, Any] = {
        "conversation_agent_id": "ca",
        "conversation_id": "conv",
        "agent_id": "ag",
        "agent_name": "Ada",
        "enabled": True,
        "display_order": 0,
        "model": model,
        "role": RoleRecord("r", "Critic", "", "Critique."),
        "personality": PersonalityRecord("p", "P"),
        "llm_config": config,
    }
    return ParticipantRecord(**(fields | kw))


MESSAGES = [ContextMessage("user", "Hi"), ContextMessage("assistant", "Hello"), ContextMessage("user", "Bob: Yo")]
WIRE_MESSAGES = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello"},
    {"role": "user", "content": "Bob: Yo"},
]


@pytest.mark.parametrize(
    ("model", "sampling", "expected_sampling"),
    [
        pytest.param(
            "gpt-4o", Sampling(0.7, None, 1024, False), {"temperature": 0.7, "max_tokens": 1024}, id="chat model"
        ),
        pytest.param(
            "gpt-4o",
            Sampling(1.5, 0.9, 300, False),
            {"temperature": 1.5, "top_p": 0.9, "max_tokens": 300},
            id="chat model with top_p",
        ),
        pytest.param("o3-mini", Sampling(None, None, 4096, True), {"max_completion_tokens": 4096}, id="reasoning"),
    ],
)
def test_the_openai_body_has_the_system_message_first_and_streams_with_usage(
    model: str, sampling: Sampling, expected_sampling: dict[str, Any]
) -> None:
    body = build_request(agent("openai", model), "SYS", MESSAGES, sampling)
    assert body == {
        "model": model,
        "messages": [{"role": "system", "content": "SYS"}, *WIRE_MESSAGES],
        "stream": True,
        "stream_options": {"include_usage": True},
        **expected_sampling,
    }


@pytest.mark.parametrize(
    ("sampling", "expected_sampling"),
    [
        pytest.param(Sampling(1.0, None, 1024, False), {"temperature": 1.0}, id="temperature"),
        pytest.param(Sampling(None, 0.8, 1024, False), {"top_p": 0.8}, id="top_p"),
        pytest.param(Sampling(0.3, 0.8, 1024, False), {"temperature": 0.3, "top_p": 0.8}, id="both"),
    ],
)
def test_the_anthropic_body_has_a_top_level_system_and_max_tokens(
    sampling: Sampling, expected_sampling: dict[str, Any]
) -> None:
    body = build_request(agent("anthropic", "claude-sonnet-4-5"), "SYS", MESSAGES, sampling)
    assert body == {
        "model": "claude-sonnet-4-5",
        "system": "SYS",
        "messages": WIRE_MESSAGES,
        "max_tokens": 1024,
        "stream": True,
        **expected_sampling,
    }


def test_the_demo_body_names_the_agent_and_its_role() -> None:
    body = build_request(agent("demo", "demo"), "SYS", MESSAGES, Sampling(0.7, None, 1024, False))
    assert body == {
        "model": "demo",
        "agent": {"name": "Ada", "role": "Critic"},
        "system": "SYS",
        "messages": WIRE_MESSAGES,
    }


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_empty_history_gets_an_opening_user_turn_for_real_providers(provider: str) -> None:
    body = build_request(agent(provider), "SYS", [], Sampling(0.7, None, 1024, False))
    assert body["messages"][-1] == {"role": "user", "content": OPENING_TURN}


def test_an_empty_history_stays_empty_for_the_demo_provider() -> None:
    assert build_request(agent("demo"), "SYS", [], Sampling(0.7, None, 1024, False))["messages"] == []


@pytest.mark.parametrize("provider", [None, "mistral"])
def test_a_missing_config_or_unknown_provider_is_a_value_error(provider: str | None) -> None:
    with pytest.raises(MissingLlmConfig) as caught:
        build_request(agent(provider), "SYS", MESSAGES, Sampling(0.7, None, 1024, False))
    assert isinstance(caught.value, ValueError)


def test_the_whole_anthropic_request_from_history_clamps_a_high_temperature() -> None:
    target = agent("anthropic", "claude-opus-4-1", temperature=1.8)
    history = [MessageRecord("m1", "conv", None, "user", "Hi", True, "complete", None, 1)]
    request = build_agent_context(target, [target], history, "m1").request
    assert request["temperature"] == 1.0
    assert "top_p" not in request
    assert request["messages"] == [{"role": "user", "content": "Hi"}]


def test_the_whole_openai_request_for_a_reasoning_model_has_no_sampling_knobs() -> None:
    target = agent("openai", "gpt-5-mini", temperature=0.2, top_p=0.5, max_tokens=2000)
    history = [MessageRecord("m1", "conv", None, "user", "Hi", True, "complete", None, 1)]
    request = build_agent_context(target, [target], history, None).request
    assert request["max_completion_tokens"] == 2000
    assert not {"temperature", "top_p", "max_tokens"} & set(request)


def test_no_request_body_carries_credentials() -> None:
    for provider in ("openai", "anthropic", "demo"):
        body = build_request(agent(provider), "SYS", MESSAGES, Sampling(0.7, None, 1024, False))
        assert not {"api_key", "apiKey", "headers", "extra_headers", "base_url"} & set(body)
