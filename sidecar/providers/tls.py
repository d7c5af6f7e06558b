"""One TLS context for every provider client: building one loads the CA bundle (~50 ms, more under load).

Each SDK client would otherwise build its own through httpx2, on the event loop, once per llm config. A context
holds only the trust settings (no credentials, no sessions), so sharing it keeps the clients' keys and headers
apart. It is made the way httpx2 makes its default (honouring ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``), in a worker
thread, once.
"""

from __future__ import annotations

import ssl
import threading

import anyio.to_thread

_context: ssl.SSLContext | None = None
_lock = threading.Lock()


async def shared_ssl_context() -> ssl.SSLContext:
    if _context is not None:  # every call but the first: no thread hop
        return _context
    return await anyio.to_thread.run_sync(_build)


def _build() -> ssl.SSLContext:
    global _context
    with _lock:  # several first calls at once build it only once
        if _context is None:
            import httpx2

            _context = httpx2.create_ssl_context()
        return _context
