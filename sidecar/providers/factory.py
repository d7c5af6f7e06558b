"""Settings → a provider; the SDKs are imported by the providers on their first call, never at import time."""

from __future__ import annotations

from sidecar.providers.anthropic import AnthropicProvider
from sidecar.providers.base import Provider, ProviderError, ProviderSettings
from sidecar.providers.demo import DemoProvider
from sidecar.providers.openai import OpenAIProvider


def open_provider(settings: ProviderSettings) -> Provider:
    """A provider for these settings; it opens no connection until its first ``stream`` call.

    A missing key surfaces from ``stream`` as a ``configuration`` ProviderError; only a provider name this
    sidecar does not know (a newer database, say) raises one here.
    """
    if settings.provider == "openai":
        return OpenAIProvider(settings)
    if settings.provider == "anthropic":
        return AnthropicProvider(settings)
    if settings.provider == "demo":
        return DemoProvider()
    raise ProviderError("configuration")
