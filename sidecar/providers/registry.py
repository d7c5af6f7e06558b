"""Every provider this sidecar speaks, by name: code elsewhere asks here and never compares a provider's name.

Each ``sidecar/providers/<name>.py`` describes itself completely in one `ProviderSpec` (``SPEC``): its SDK
module, whether it uses an API key, how it builds a request body, its sampling limits, its base-URL rule, how
it opens a client, how it classifies errors; its `Provider` detects the end of a stream. Adding a provider
means one new module, its name in ``names.PROVIDER_NAMES``, and its name in the ``Provider`` enum of
``schema/openrpc.json`` (a unit test checks the two agree).
"""

from __future__ import annotations

from importlib import import_module

from sidecar.providers.base import ProviderError
from sidecar.providers.names import PROVIDER_NAMES
from sidecar.providers.spec import ProviderSpec


def _load(name: str) -> ProviderSpec:
    spec: ProviderSpec = import_module(f"sidecar.providers.{name}").SPEC
    if spec.name != name:
        raise RuntimeError(f"sidecar/providers/{name}.py describes a provider named {spec.name!r}")
    return spec


PROVIDERS: dict[str, ProviderSpec] = {name: _load(name) for name in PROVIDER_NAMES}


def spec_for(name: str) -> ProviderSpec:
    """The provider called ``name``; one this sidecar does not know (a newer database, say) is a configuration
    error."""
    spec = PROVIDERS.get(name)
    if spec is None:
        raise ProviderError("configuration")
    return spec


def provider_names() -> list[str]:
    return list(PROVIDER_NAMES)


def normalize_base_url(name: str, base_url: str | None) -> str | None:
    """The base URL as stored: blank means "the provider's default" (None); otherwise stripped and put in the
    form the provider's SDK takes. A provider this sidecar does not know keeps the stripped URL."""
    if base_url is None or not base_url.strip():
        return None
    spec = PROVIDERS.get(name)
    url = base_url.strip()
    return url if spec is None else spec.normalize_base_url(url)
