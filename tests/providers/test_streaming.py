"""The real SDK clients, through our providers, streaming from the fake server."""

from __future__ import annotations

import json
from contextlib import aclosing

import anyio
import pytest

from sidecar.providers.base import StreamEnd, Usage
from sidecar.providers.factory import open_provider
from tests.fake_provider import FakeProvider
from tests.providers.helpers import body_for, collect, settings_for

pytestmark = pytest.mark.anyio
PROVIDERS = ["openai", "anthropic"]


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_reply_streams_as_non_empty_deltas_then_one_end_with_its_usage(fake: FakeProvider, name: str) -> None:
    provider = open_provider(settings_for(name, fake))
    try:
        texts, end = await collect(provider, body_for(name, "model-ok", content="What is the plan for today?"))
    finally:
        await provider.aclose()
    assert "".join(texts) == 'Fake reply to "What is the plan for today?".'
    assert len(texts) == 9 and all(texts)
    # The fake counts words: the system prompt (3) and the user message (6) in, the reply (9) out.
    assert end == StreamEnd(Usage(input_tokens=9, output_tokens=9), "end")


@pytest.mark.parametrize("name", PROVIDERS)
async def test_the_body_is_sent_exactly_as_given(fake: FakeProvider, name: str) -> None:
    body = body_for(name, "model-ok", temperature=0.7, top_p=0.9)
    provider = open_provider(settings_for(name, fake))
    try:
        await collect(provider, body)
    finally:
        await provider.aclose()
    assert [r.body for r in fake.requests] == [body]


@pytest.mark.parametrize("name", PROVIDERS)
async def test_the_model_sees_the_whole_context(fake: FakeProvider, name: str) -> None:
    body = body_for(name, "model-echo", content="Bob: I disagree.\n\nWhy?")
    provider = open_provider(settings_for(name, fake))
    try:
        texts, _ = await collect(provider, body)
    finally:
        await provider.aclose()
    echoed = json.loads("".join(texts))
    if name == "openai":
        assert echoed == body["messages"]
    else:
        assert echoed == {"system": body["system"], "messages": body["messages"]}


@pytest.mark.parametrize("name", PROVIDERS)
async def test_long_replies_arrive_whole(fake: FakeProvider, name: str) -> None:
    provider = open_provider(settings_for(name, fake))
    try:
        texts, end = await collect(provider, body_for(name, "model-words-300"))
    finally:
        await provider.aclose()
    assert len("".join(texts).split()) == 300
    assert end.usage is not None and end.usage.output_tokens == 300


@pytest.mark.parametrize("name", PROVIDERS)
async def test_one_provider_streams_several_bodies_in_parallel(fake: FakeProvider, name: str) -> None:
    # gate-3 holds every response until three requests are open at once: parallel, or a 500 after 10 s.
    provider = open_provider(settings_for(name, fake))
    results: list[str] = []

    async def one(i: int) -> None:
        texts, _ = await collect(provider, body_for(name, "model-gate-3", content=f"agent {i}"))
        results.append("".join(texts))

    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for i in range(3):
                    tg.start_soon(one, i)
    finally:
        await provider.aclose()
    assert sorted(results) == [f'Fake reply to "agent {i}".' for i in range(3)]
    assert fake.max_concurrent >= 3  # the barrier opened; a connection an earlier test left open may add one


@pytest.mark.parametrize("name", PROVIDERS)
async def test_cancelling_mid_stream_propagates_and_frees_the_client(fake: FakeProvider, name: str) -> None:
    provider = open_provider(settings_for(name, fake))
    seen: list[str] = []
    try:
        with anyio.CancelScope() as scope:
            async with aclosing(provider.stream(body_for(name, "model-words-50-pace-20"))) as chunks:
                async for item in chunks:
                    seen.append(str(item))
                    scope.cancel()  # the next await inside the provider raises the cancellation
        assert scope.cancelled_caught
        assert len(seen) == 1
        texts, _ = await collect(provider, body_for(name, "model-ok"))  # the same client still works
        assert texts
    finally:
        await provider.aclose()


@pytest.mark.parametrize("name", PROVIDERS)
async def test_leaving_a_stream_early_closes_it(fake: FakeProvider, name: str) -> None:
    provider = open_provider(settings_for(name, fake))
    try:
        async with aclosing(provider.stream(body_for(name, "model-words-100"))) as chunks:
            async for _ in chunks:
                break
        texts, _ = await collect(provider, body_for(name, "model-ok"))
        assert texts
    finally:
        await provider.aclose()


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_closed_provider_opens_a_new_client_on_the_next_call(fake: FakeProvider, name: str) -> None:
    provider = open_provider(settings_for(name, fake))
    await provider.aclose()  # closing before any call is fine
    try:
        await collect(provider, body_for(name, "model-ok"))
        await provider.aclose()
        texts, _ = await collect(provider, body_for(name, "model-ok"))
    finally:
        await provider.aclose()
    assert texts
