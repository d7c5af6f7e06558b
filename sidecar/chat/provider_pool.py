"""One provider client per llm config (rebuilt when its settings or key change) and its call slots.

At most `maxConcurrency` calls run at once per llm config; the limiter follows the config when it changes. A call
holds its client through `lease`, so a client replaced by a settings or key change is closed when its last call
ends (at once if none runs), not kept with its connection pool until the process exits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from sidecar.errors import SecretStorageError
from sidecar.logs import logger
from sidecar.providers.base import Provider, ProviderError, ProviderSettings
from sidecar.providers.factory import import_sdk, open_provider
from sidecar.providers.registry import spec_for
from sidecar.secrets import SecretStore
from storage.records import LlmConfigRecord, ParticipantRecord

NO_LLM_CONFIG = "This agent has no LLM configuration. Choose one in its settings."
KEY_UNREADABLE = "The API key for this agent's LLM configuration could not be read from the OS keychain."
CLOSE_SECONDS = 0.2


class ProviderPool:
    def __init__(self, secrets: SecretStore) -> None:
        self._secrets = secrets
        self._providers: dict[str, tuple[ProviderSettings, Provider]] = {}
        self._slots: dict[str, anyio.CapacityLimiter] = {}
        self._retired: list[Provider] = []  # replaced clients that calls still use
        self._leases: dict[int, int] = {}  # id(client) → calls using it now

    @asynccontextmanager
    async def lease(self, participant: ParticipantRecord) -> AsyncIterator[Provider]:
        """This agent's client for one call; a client replaced meanwhile is closed when its last call ends."""
        provider = await self.provider_for(participant)
        key = id(provider)
        self._leases[key] = self._leases.get(key, 0) + 1  # no await since provider_for returned: nothing closed it
        try:
            yield provider
        finally:
            left = self._leases.pop(key) - 1
            if left:
                self._leases[key] = left
            elif provider in self._retired:
                self._retired.remove(provider)
                await _close_bounded(provider)

    async def provider_for(self, participant: ParticipantRecord) -> Provider:
        """The client for this agent's llm config; raises a classified ProviderError when there can be none."""
        config = participant.llm_config
        if config is None:
            raise ProviderError("configuration", safe_message=NO_LLM_CONFIG)
        spec = spec_for(config.provider)
        api_key = None
        if spec.uses_api_key:
            try:
                api_key = await self._secrets.get(config.id, in_keychain=config.key_in_keychain)
            except SecretStorageError:
                raise ProviderError("configuration", safe_message=KEY_UNREADABLE) from None
        settings = ProviderSettings(config.provider, config.base_url, api_key, config.use_auth_header)
        cached = self._providers.get(config.id)
        if cached is not None and cached[0] == settings:
            return cached[1]
        await import_sdk(config.provider)
        cached = self._providers.get(config.id)  # another agent of this config may have opened it meanwhile
        if cached is not None and cached[0] == settings:
            return cached[1]
        provider = open_provider(settings)
        self._providers[config.id] = (settings, provider)
        if cached is not None:
            # A key change must not cut the calls streaming through the old client: it is closed after them.
            if self._leases.get(id(cached[1])):
                self._retired.append(cached[1])
            else:
                await _close_bounded(cached[1])
        return provider

    def slots(self, config: LlmConfigRecord | None) -> anyio.CapacityLimiter:
        """The limiter of this config's concurrent calls, sized to its current `maxConcurrency`."""
        key = config.id if config is not None else ""
        size = max(1, getattr(config, "max_concurrency", 8) if config is not None else 8)
        limiter = self._slots.get(key)
        if limiter is None:
            limiter = self._slots[key] = anyio.CapacityLimiter(size)
        elif limiter.total_tokens != size:
            limiter.total_tokens = size  # raising it wakes waiters; lowering it lets running calls finish
        return limiter

    async def aclose(self) -> None:
        providers = [provider for _, provider in self._providers.values()] + self._retired
        self._providers.clear()
        self._retired = []
        with anyio.move_on_after(CLOSE_SECONDS, shield=True):
            for provider in providers:
                await _close_quietly(provider)


async def _close_bounded(provider: Provider) -> None:
    with anyio.move_on_after(CLOSE_SECONDS, shield=True):
        await _close_quietly(provider)


async def _close_quietly(provider: Provider) -> None:
    try:
        await provider.aclose()
    except Exception as exc:  # closing is best effort; a failure here must not hide the real outcome
        logger.bind(exc_type=type(exc).__name__).debug("provider close failed")
