"""The OpenAI (and OpenAI-compatible) provider: streamed Chat Completions through the official SDK's client.

The body is posted as built (``request_bodies`` makes the exact wire JSON) with the client's public ``post``,
and the stream yields plain dicts: ``chat.completions.create`` would re-walk every message through its typed
transform (~22 ms for 100 messages) and build a pydantic chunk per SSE event (~0.8 ms each), all on the event
loop. The client still supplies auth, base URL, headers, the connection pool, the status-error classes, and
the stream's ``[DONE]`` and in-stream ``error`` handling.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio

from sidecar.providers.base import ProviderError, ProviderSettings, Usage, omitted_env_headers
from sidecar.providers.errors import classify_provider_error, missing_key_error
from sidecar.providers.tls import shared_ssl_context

if TYPE_CHECKING:
    import ssl

    from openai import AsyncOpenAI

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Generous on purpose: the orchestrator enforces first-token and stall timeouts itself.
REQUEST_TIMEOUT_S = 600.0
CLOSE_TIMEOUT_S = 2.0
# Sent to satisfy the SDK's credential check when no key is wanted; the Authorization header is omitted.
_NO_KEY_PLACEHOLDER = "no-key"


class OpenAIProvider:
    """One AsyncOpenAI client, built on the first call (so the SDK is imported only when used)."""

    def __init__(self, settings: ProviderSettings) -> None:
        self._settings = settings
        self._client: AsyncOpenAI | None = None
        self._stream_cls: Any = None
        self._request_options: dict[str, Any] = {}

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[str | Usage]:
        try:
            client = await self._get_client()
            stream = await client.post(
                "/chat/completions",
                cast_to=object,  # the stream yields each chunk's parsed JSON as is
                body=body,
                options=self._request_options,  # type: ignore[arg-type]  # a RequestOptions dict
                stream=True,
                stream_cls=self._stream_cls,
            )
        except ProviderError:
            raise
        except Exception as exc:
            raise classify_provider_error(exc, "openai") from exc
        usage: Usage | None = None
        try:
            async for chunk in stream:
                text, chunk_usage = _read_chunk(chunk)
                usage = chunk_usage or usage
                if text:
                    yield text
        except ProviderError:
            raise
        except Exception as exc:
            raise classify_provider_error(exc, "openai") from exc
        finally:
            # Shielded and bounded, so a cancelled stream still releases its connection.
            with anyio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
                await stream.close()
        if usage is not None:
            yield usage

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def _get_client(self) -> AsyncOpenAI:
        if self._client is None:
            _check_key(self._settings)
            ssl_context = await shared_ssl_context()
            if self._client is None:  # a parallel first call may have built it meanwhile
                self._client = _open_client(self._settings, ssl_context)
                self._set_request_options()
        return self._client

    def _set_request_options(self) -> None:
        from openai import AsyncStream, Omit

        self._stream_cls = AsyncStream[object]
        # What chat.completions.create asks for: only the bearer key, never OPENAI_ADMIN_KEY's.
        self._request_options = {"security": {"bearer_auth": True}}
        if not self._settings.use_auth_header:
            # OpenAI-compatible servers such as Ollama want no key at all. The SDK only accepts a missing
            # Authorization header when the request itself omits it.
            self._request_options["headers"] = {"Authorization": Omit()}


def _check_key(settings: ProviderSettings) -> None:
    if settings.use_auth_header and not settings.api_key:
        raise missing_key_error()


def _open_client(settings: ProviderSettings, ssl_context: ssl.SSLContext) -> AsyncOpenAI:
    from openai import AsyncOpenAI, DefaultAsyncHttpxClient, Omit

    # Explicit values everywhere: the SDK would otherwise read OPENAI_BASE_URL, OPENAI_ORG_ID and friends.
    headers = omitted_env_headers("OPENAI_CUSTOM_HEADERS", Omit())
    headers.update({"OpenAI-Organization": Omit(), "OpenAI-Project": Omit()})
    if settings.use_auth_header:
        # Named here too, so an Authorization line in OPENAI_CUSTOM_HEADERS can never replace it.
        headers["Authorization"] = f"Bearer {settings.api_key}"
    return AsyncOpenAI(
        api_key=(settings.api_key if settings.use_auth_header else None) or _NO_KEY_PLACEHOLDER,
        organization=None,
        project=None,
        base_url=settings.base_url or DEFAULT_BASE_URL,
        timeout=REQUEST_TIMEOUT_S,
        max_retries=0,  # the orchestrator retries, with the contract's backoff
        default_headers=headers,
        # The SDK's own defaults (limits, redirects), with the shared TLS context instead of a new one.
        http_client=DefaultAsyncHttpxClient(verify=ssl_context),
    )


def _read_chunk(chunk: Any) -> tuple[str | None, Usage | None]:
    """The text delta and usage of one chunk (its JSON); an unexpected shape is a malformed stream."""
    try:
        text = None
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta")
            if choice.get("index", 0) == 0 and delta is not None:
                text = delta.get("content")
        raw = chunk.get("usage")
        usage = None if raw is None else Usage(_count(raw.get("prompt_tokens")), _count(raw.get("completion_tokens")))
    except (AttributeError, TypeError) as exc:  # a list or a string where an object belongs
        raise ProviderError("provider") from exc
    if text is not None and not isinstance(text, str):
        raise ProviderError("provider")
    return text, usage


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
