"""The providers post the engine's body as is through the SDK clients, read the stream's raw JSON, and share
one TLS context."""

from __future__ import annotations

import threading

import httpcore2
import pytest

from sidecar.providers import tls
from sidecar.providers.base import ProviderError
from sidecar.providers.factory import open_provider
from tests.fake_provider import FakeProvider
from tests.providers.helpers import body_for, collect, settings_for

pytestmark = pytest.mark.anyio
PROVIDERS = ["openai", "anthropic"]
# Keys the API takes that the SDKs' create() methods may not name; they must still arrive at the top level.
EXTRA_KEYS = {"openai": {"seed": 7, "presence_penalty": 0.5}, "anthropic": {"top_k": 5, "stop_sequences": ["\n\n"]}}


@pytest.mark.parametrize("name", PROVIDERS)
async def test_the_body_reaches_the_server_unchanged(fake: FakeProvider, name: str) -> None:
    body = body_for(name, "model-ok", content='Zoë says 你好 — "quoted" \\ and\nnewline 🙂', **EXTRA_KEYS[name])
    sent = repr(body)
    provider = open_provider(settings_for(name, fake))
    try:
        texts, end = await collect(provider, body)
    finally:
        await provider.aclose()
    assert [r.body for r in fake.requests] == [body]
    assert repr(body) == sent  # not mutated on the way
    assert texts and end.usage is not None


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(429, "rate_limit"), (401, "auth"), (400, "validation"), (529, "provider"), (500, "provider")],
)
async def test_anthropic_in_stream_error_events_classify_by_their_type(
    fake: FakeProvider, status: int, error_type: str
) -> None:
    provider = open_provider(settings_for("anthropic", fake))
    texts: list[str] = []
    try:
        with pytest.raises(ProviderError) as caught:
            async for item in provider.stream(body_for("anthropic", f"m-words-20-midstream-{status}")):
                texts.append(str(item))
    finally:
        await provider.aclose()
    assert (caught.value.error_type, caught.value.status_code) == (error_type, status)
    assert "".join(texts) == "Fake reply"  # what came before the error event


async def test_an_openai_in_stream_error_is_a_provider_error(fake: FakeProvider) -> None:
    provider = open_provider(settings_for("openai", fake))
    try:
        with pytest.raises(ProviderError) as caught:
            await collect(provider, body_for("openai", "m-midstream-429"))
    finally:
        await provider.aclose()
    assert caught.value.error_type == "provider" and caught.value.retryable


async def test_clients_share_one_tls_context_built_once_in_a_worker_thread(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[threading.Thread] = []
    real = httpcore2.default_ssl_context

    def spy(**kwargs: object) -> object:  # what httpx2 calls for each client that has no context of its own
        builds.append(threading.current_thread())
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(httpcore2, "default_ssl_context", spy)
    monkeypatch.setattr(tls, "_context", None)
    providers = [open_provider(settings_for(name, fake)) for name in PROVIDERS * 3]
    try:
        for provider, name in zip(providers, PROVIDERS * 3, strict=True):
            texts, end = await collect(provider, body_for(name, "model-ok"))
            assert texts and end.usage is not None
    finally:
        for provider in providers:
            await provider.aclose()
    assert len(builds) == 1
    assert builds[0] is not threading.current_thread()
    assert await tls.shared_ssl_context() is tls._context
