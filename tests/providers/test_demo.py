"""The offline demo provider: deterministic replies, word-by-word streaming and simulated failures."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sidecar.providers.base import (
    ERROR_TYPES,
    RETRYABLE_ERROR_TYPES,
    ProviderError,
    ProviderSettings,
    StreamEnd,
    Usage,
)
from sidecar.providers.demo import DemoProvider, demo_reply
from sidecar.providers.factory import open_provider
from tests.providers.helpers import collect

pytestmark = pytest.mark.anyio


def demo_body(model: str = "demo", content: str = "Should we ship on Friday?") -> dict[str, object]:
    return {
        "model": model,
        "agent": {"name": "Ada", "role": "Critic"},
        "system": "You are Ada, the critic.",
        "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi"},
            {"role": "user", "content": content},
        ],
    }


@pytest.mark.parametrize("model", ["demo", "demo-slow"])
async def test_the_demo_reply_streams_word_by_word(model: str) -> None:
    texts, end = await collect(DemoProvider(time_scale=0), demo_body(model))
    reply = "".join(texts)
    assert reply == demo_reply("Ada", "Critic", "Should we ship on Friday?")
    assert len(texts) == len(reply.split()) and all(texts)
    assert "Ada" in reply and "Critic" in reply and "Should we ship on Friday?" in reply
    assert end == StreamEnd(Usage(input_tokens=5 + 2 + 5, output_tokens=len(reply.split())), "end")


async def test_the_demo_reply_is_deterministic() -> None:
    first, _ = await collect(DemoProvider(time_scale=0), demo_body())
    second, _ = await collect(open_provider(ProviderSettings("demo", None, None)), demo_body())
    assert first == second


@pytest.mark.parametrize(
    ("name", "role", "last"),
    [("Ada", "Critic", "Short"), ("", "", None), ("Bob", "Architect", "word " * 200), ("Zoë", "Poet", "¿Qué?")],
)
def test_a_demo_reply_has_twenty_to_forty_words(name: str, role: str, last: str | None) -> None:
    assert 20 <= len(demo_reply(name, role, last).split()) <= 40


async def test_an_empty_history_still_gets_a_reply() -> None:
    texts, _ = await collect(DemoProvider(time_scale=0), {**demo_body(), "messages": []})
    assert "Nobody has said anything yet." in "".join(texts)


@pytest.mark.parametrize("error_type", ERROR_TYPES)
async def test_a_demo_error_model_fails_as_that_type(error_type: str) -> None:
    with pytest.raises(ProviderError) as caught:
        await collect(DemoProvider(time_scale=0), demo_body(f"demo-error-{error_type}"))
    assert caught.value.error_type == error_type
    assert caught.value.retryable == (error_type in RETRYABLE_ERROR_TYPES)


@pytest.mark.parametrize("model", ["demo-error-bogus", "gpt-4o", "", "demo-fast"])
async def test_an_unknown_demo_model_is_a_configuration_error(model: str) -> None:
    with pytest.raises(ProviderError) as caught:
        await collect(DemoProvider(time_scale=0), demo_body(model))
    assert (caught.value.error_type, caught.value.retryable) == ("configuration", False)


def test_importing_the_providers_loads_no_sdk() -> None:
    code = (
        "import sys, sidecar.providers.factory, sidecar.providers.errors;"
        "print(sorted(m for m in ('openai', 'anthropic', 'httpx2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
