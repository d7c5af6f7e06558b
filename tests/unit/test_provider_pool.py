"""The provider pool closes a client replaced by a key change once no call uses it (never under a running call),
through the real OpenAI SDK client against the fake provider server."""

from __future__ import annotations

from contextlib import aclosing

import anyio

from sidecar.chat.provider_pool import ProviderPool
from sidecar.providers.base import StreamEnd
from sidecar.secrets import SecretStore
from storage.records import LlmConfigRecord, ParticipantRecord, PersonalityRecord, RoleRecord
from tests.fake_provider import FakeProvider
from tests.stdio.chat_setup import API_KEY


def _participant(base_url: str) -> ParticipantRecord:
    config = LlmConfigRecord("cfg", "fake openai", "openai", base_url, True)
    return ParticipantRecord("ca", "conv", "agent", "Oli", True, 0, "gpt-words-3", RoleRecord("r", "Helper", "", ""),
                             PersonalityRecord("p", "Plain"), config)


async def _one_reply(provider: object) -> str:
    body = {"model": "gpt-words-3", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    text = ""
    async with aclosing(provider.stream(body)) as items:  # type: ignore[attr-defined]
        async for item in items:
            text += "" if isinstance(item, StreamEnd) else item
    return text


def test_a_replaced_client_is_closed_after_its_last_call_and_at_once_when_idle(fake_provider: FakeProvider) -> None:
    async def scenario() -> None:
        secrets = SecretStore("memory")
        pool = ProviderPool(secrets)
        agent = _participant(fake_provider.openai_base_url)
        await secrets.set("cfg", API_KEY, persist=False)
        async with pool.lease(agent) as first:
            assert await _one_reply(first)
            await secrets.set("cfg", API_KEY + "-2", persist=False)
            async with pool.lease(agent) as second:
                assert second is not first
                assert first._client is not None  # type: ignore[attr-defined]  # a running call keeps it open
                assert await _one_reply(second)
            assert first._client is not None  # type: ignore[attr-defined]  # still leased by the outer call
        assert first._client is None  # type: ignore[attr-defined]  # its last call ended: closed
        assert second._client is not None  # type: ignore[attr-defined]  # the current client stays
        await secrets.set("cfg", API_KEY + "-3", persist=False)
        async with pool.lease(agent) as third:
            assert third is not second
        assert second._client is None  # type: ignore[attr-defined]  # replaced with no call on it: closed at once
        await pool.aclose()

    anyio.run(scenario)
