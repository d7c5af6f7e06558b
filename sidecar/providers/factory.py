"""Settings → a provider, and the SDK imports behind it: never at import time, once, off the event loop."""

from __future__ import annotations

import gc
import importlib
import threading

import anyio
import anyio.to_thread

from sidecar.providers.base import Provider, ProviderSettings
from sidecar.providers.registry import spec_for


def open_provider(settings: ProviderSettings) -> Provider:
    """A provider for these settings; it opens no connection until its first ``stream`` call.

    A missing key surfaces from ``stream`` as a ``configuration`` ProviderError; only a provider name this
    sidecar does not know (a newer database, say) raises one here.
    """
    return spec_for(settings.provider).open(settings)


_imported: set[str] = set()
# One lock for every SDK, held by the importing thread: they share pydantic and httpx2, and two threads importing one
# cycle can deadlock. A caller cancelled while waiting leaves the import running (exit does not wait for it).
_import_lock = threading.Lock()


async def import_sdk(provider: str) -> None:
    """Import a provider's SDK in a worker thread: it takes 0.5–1 s, which would freeze the event loop
    (and every other request) if the first call imported it there. An unknown provider is a ``configuration``
    ProviderError.

    Callers that arrive while the import runs wait for it here: the module is in ``sys.modules`` from the
    import's first line, and touching it on the loop then would block the loop on the import lock until done.
    A caller cancelled meanwhile stops waiting; the import goes on in its thread (the process's exit, which ends
    with ``os._exit``, does not wait for it).
    """
    module = spec_for(provider).sdk_module
    if module is None or module in _imported:  # imported once; later turns pay nothing
        return
    await anyio.to_thread.run_sync(_import, module, abandon_on_cancel=True)


def _import(module: str) -> None:
    with _import_lock:
        if module not in _imported:
            importlib.import_module(module)
            _imported.add(module)
            # The SDK (with pydantic and httpx2) adds ~10^5 objects that live as long as the process; each full
            # collection walked them all, 50-120 ms of frozen event loop under load. Keep them out of its scans.
            gc.freeze()
