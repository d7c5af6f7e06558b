"""Request bodies shaped like the chat engine's, settings for the fake server, and a stream collector."""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

from sidecar.providers.base import Provider, ProviderSettings, StreamEnd
from tests.fake_provider import FakeProvider

KEY = "sk-test-secret-0123456789"


def openai_settings(fake: FakeProvider, *, key: str | None = KEY, use_auth_header: bool = True) -> ProviderSettings:
    return ProviderSettings("openai", fake.openai_base_url, key, use_auth_header)


def anthropic_settings(
    fake: FakeProvider, *, key: str | None = KEY, use_auth_header: bool = True, base_url: str | None = None
) -> ProviderSettings:
    return ProviderSettings("anthropic", base_url or fake.anthropic_base_url, key, use_auth_header)


def openai_body(model: str, content: str = "Hello from the test suite", **sampling: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": content}],
        "stream": True,
        "stream_options": {"include_usage": True},
        **sampling,
    }


def anthropic_body(model: str, content: str = "Hello from the test suite", **sampling: Any) -> dict[str, Any]:
    return {
        "model": model,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 256,
        "stream": True,
        **sampling,
    }


def body_for(provider: str, model: str, **kwargs: Any) -> dict[str, Any]:
    return openai_body(model, **kwargs) if provider == "openai" else anthropic_body(model, **kwargs)


def settings_for(provider: str, fake: FakeProvider, **kwargs: Any) -> ProviderSettings:
    return openai_settings(fake, **kwargs) if provider == "openai" else anthropic_settings(fake, **kwargs)


async def collect(provider: Provider, body: dict[str, Any]) -> tuple[list[str], StreamEnd]:
    """Every delta the stream yields and its end, checking the protocol: non-empty texts, then one StreamEnd, last."""
    texts: list[str] = []
    ends: list[StreamEnd] = []
    async with aclosing(provider.stream(body)) as chunks:
        async for item in chunks:
            assert not ends, "an item after the StreamEnd"
            if isinstance(item, StreamEnd):
                ends.append(item)
            else:
                assert isinstance(item, str) and item, f"not a non-empty text delta: {item!r}"
                texts.append(item)
    assert len(ends) == 1, "the stream ended without a StreamEnd"
    return texts, ends[0]
