"""How a reply ends, through the real SDK clients: its stop reason, a dropped stream, and a whole JSON answer."""

from __future__ import annotations

import pytest

from sidecar.providers.base import ProviderError, StopReason, StreamEnd, Usage
from sidecar.providers.errors import DROPPED_STREAM_MESSAGE
from sidecar.providers.factory import open_provider
from tests.fake_provider import FakeProvider
from tests.providers.helpers import body_for, collect, settings_for

pytestmark = pytest.mark.anyio
PROVIDERS = ["openai", "anthropic"]
QUESTION = "What is the plan for today?"
REPLY = 'Fake reply to "What is the plan for today?".'
# The fake counts words: the system prompt (3) and the question (6) in, the reply (9) out.
USAGE = Usage(input_tokens=9, output_tokens=9)


async def _collect(fake: FakeProvider, name: str, model: str) -> tuple[list[str], StreamEnd]:
    provider = open_provider(settings_for(name, fake))
    try:
        return await collect(provider, body_for(name, model, content=QUESTION))
    finally:
        await provider.aclose()


async def _failure(fake: FakeProvider, name: str, model: str) -> tuple[list[str], ProviderError]:
    """The texts that arrived before the stream failed, and its error."""
    provider = open_provider(settings_for(name, fake))
    texts: list[str] = []
    try:
        with pytest.raises(ProviderError) as caught:
            async for item in provider.stream(body_for(name, model, content=QUESTION)):
                assert isinstance(item, str), "a dropped stream yields no StreamEnd"
                texts.append(item)
    finally:
        await provider.aclose()
    return texts, caught.value


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize(
    ("model", "stop_reason"),
    [
        ("model-ok", "end"),
        ("model-stop-length", "max_tokens"),
        ("model-stop-filter", "content_filter"),
        ("model-stop-tools", "end"),  # a tool call's reason (tool_calls, tool_use) ended the reply normally
    ],
)
async def test_a_streamed_reply_ends_with_the_providers_stop_reason(
    fake: FakeProvider, name: str, model: str, stop_reason: StopReason
) -> None:
    texts, end = await _collect(fake, name, model)
    assert "".join(texts) == REPLY
    assert end == StreamEnd(USAGE, stop_reason)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_stream_that_stops_after_some_text_without_the_final_event_is_a_network_error(
    fake: FakeProvider, name: str
) -> None:
    texts, error = await _failure(fake, name, "model-nodone")
    assert "".join(texts) == REPLY  # every delta that came is still handed on
    assert (error.error_type, error.retryable, error.safe_message) == ("network", True, DROPPED_STREAM_MESSAGE)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_stream_that_stops_before_any_text_without_the_final_event_is_a_network_error(
    fake: FakeProvider, name: str
) -> None:
    texts, error = await _failure(fake, name, "model-words-0-nodone")
    assert texts == []
    assert (error.error_type, error.retryable) == ("network", True)
    assert len(fake.requests) == 1  # the provider never retries: the engine decides


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize(
    ("model", "stop_reason"),
    [
        ("model-jsonbody", "end"),
        ("model-jsonbody-stop-length", "max_tokens"),
        ("model-jsonbody-stop-filter", "content_filter"),
    ],
)
async def test_a_whole_json_answer_to_a_streaming_request_is_read_as_one_chunk(
    fake: FakeProvider, name: str, model: str, stop_reason: StopReason
) -> None:
    texts, end = await _collect(fake, name, model)
    assert texts == [REPLY]
    assert end == StreamEnd(USAGE, stop_reason)
    assert len(fake.requests) == 1 and fake.requests[0].body["stream"] is True


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_whole_json_answer_with_no_text_ends_without_a_delta(fake: FakeProvider, name: str) -> None:
    texts, end = await _collect(fake, name, "model-jsonbody-words-0")
    assert texts == []
    assert end == StreamEnd(Usage(input_tokens=9, output_tokens=0), "end")
