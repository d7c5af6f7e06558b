"""Load, in the background, what the first turn will need: the chat engine, the SDKs of the providers the stored
llm configs use, and the shared TLS context. Without it the first turn pays for them (~2 s with both SDKs).

Every step runs in a worker thread, through the same functions a turn uses, so a turn that arrives meanwhile waits
for the same import (never a second one) and is never slower than without the warm-up. Nothing is loaded for a
provider no config uses. Between steps it stops if the process is stopping: an import in progress cannot be
cancelled, and exit waits for it.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from typing import TYPE_CHECKING

import anyio.to_thread
from loguru import logger

from sidecar.services import CHAT_ENGINE_MODULE

if TYPE_CHECKING:
    from sidecar.services import Services


async def warm_up(services: Services) -> None:
    """Run once the database is open (it waits for the open); a failure only costs the first turn its head start."""
    try:
        await services.db.wait_open()
        started = anyio.current_time()
        with _loop_first():
            sdks = await _warm(services)
    except Exception as exc:  # a database that failed to open is reported by `serve`; here the warm-up just ends
        logger.bind(error=type(exc).__name__).debug("warm-up skipped")
    else:
        logger.bind(ms=round((anyio.current_time() - started) * 1000), sdks=sdks).debug("warmed up")


# While the warm-up thread imports, the GIL passes to the event loop after 1 ms instead of 5 (a request waits for
# it once per system call it makes), and no full collection runs over the half-imported SDK (50-100 ms holding the
# GIL each; `import_sdk` freezes those objects out of later collections anyway).
SWITCH_INTERVAL_S = 0.001


@contextmanager
def _loop_first() -> Iterator[None]:
    interval, collecting = sys.getswitchinterval(), gc.isenabled()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.disable()
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        if collecting:
            gc.enable()


async def _warm(services: Services) -> list[str]:
    # The engine imports the registry, the factory, the TLS module and storage: the imports below are lookups.
    await anyio.to_thread.run_sync(import_module, CHAT_ENGINE_MODULE)
    from sidecar.providers.factory import import_sdk
    from sidecar.providers.registry import PROVIDERS
    from sidecar.providers.tls import shared_ssl_context
    from storage.repositories.llm_configs import providers_in_use

    in_use = await services.db.run(providers_in_use)
    sdks = [name for name in in_use if name in PROVIDERS and PROVIDERS[name].sdk_module]
    for name in sdks:
        if services.lifecycle.stopping:
            return []
        await import_sdk(name)
    if sdks and not services.lifecycle.stopping:
        await shared_ssl_context()
    return sdks
