"""The Anthropic provider: streamed Messages through the official SDK's client, raw events read by hand.

The body is posted as built (``request_bodies`` makes the exact wire JSON) with the client's public ``post``,
and the stream yields each event's JSON as a plain dict instead of a pydantic model per event. The client still
supplies auth, base URL, ``anthropic-version``, the connection pool, the status-error classes, and the
stream's ``ping`` skipping and in-stream ``error`` events (raised as status errors).
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

    from anthropic import AsyncAnthropic

DEFAULT_BASE_URL = "https://api.anthropic.com"
# Generous on purpose: the orchestrator enforces first-token and stall timeouts itself.
REQUEST_TIMEOUT_S = 600.0
CLOSE_TIMEOUT_S = 2.0


class AnthropicProvider:
    """One AsyncAnthropic client, built on the first call (so the SDK is imported only when used)."""

    def __init__(self, settings: ProviderSettings) -> None:
        self._settings = settings
        self._client: AsyncAnthropic | None = None
        self._stream_cls: Any = None

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[str | Usage]:
        try:
            client = await self._get_client()
            stream = await client.post(
                "/v1/messages",
                cast_to=object,  # the stream yields each event's parsed JSON as is
                body=body,
                stream=True,
                stream_cls=self._stream_cls,
            )
        except ProviderError:
            raise
        except Exception as exc:
            raise classify_provider_error(exc, "anthropic") from exc
        tally = _UsageTally()
        try:
            async for event in stream:
                text = _read_event(event, tally)
                if text:
                    yield text
        except ProviderError:
            raise
        except Exception as exc:
            raise classify_provider_error(exc, "anthropic") from exc
        finally:
            # Shielded and bounded, so a cancelled stream still releases its connection.
            with anyio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
                await stream.close()
        if tally.seen:
            yield Usage(tally.input_tokens, tally.output_tokens)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def _get_client(self) -> AsyncAnthropic:
        if self._client is None:
            if not self._settings.api_key:
                raise missing_key_error()
            ssl_context = await shared_ssl_context()
            if self._client is None:  # a parallel first call may have built it meanwhile
                from anthropic import AsyncStream

                self._stream_cls = AsyncStream[object]
                self._client = _open_client(self._settings, ssl_context)
        return self._client


def _open_client(settings: ProviderSettings, ssl_context: ssl.SSLContext) -> AsyncAnthropic:
    from anthropic import AsyncAnthropic, DefaultAsyncHttpxClient, Omit

    key = settings.api_key
    if not key:
        raise missing_key_error()
    # ANTHROPIC_CUSTOM_HEADERS would add a proxy's headers to every request; our own auth header goes last.
    headers = omitted_env_headers("ANTHROPIC_CUSTOM_HEADERS", Omit())
    if settings.use_auth_header:
        credential: dict[str, str] = {"auth_token": key}
        headers.update({"Authorization": f"Bearer {key}", "x-api-key": Omit()})
    else:
        credential = {"api_key": key}  # anthropic 2.x sends api_key as Bearer too: the header below wins
        headers.update({"x-api-key": key, "Authorization": Omit()})
    # An explicit credential and base URL keep the SDK off ANTHROPIC_* variables and on-disk profiles.
    return AsyncAnthropic(
        **credential,
        base_url=anthropic_base_url(settings.base_url),
        timeout=REQUEST_TIMEOUT_S,
        max_retries=0,  # the orchestrator retries, with the contract's backoff
        default_headers=headers,
        # The SDK's own defaults (limits, redirects), with the shared TLS context instead of a new one.
        http_client=DefaultAsyncHttpxClient(verify=ssl_context),
    )


def anthropic_base_url(base_url: str | None) -> str:
    """The SDK posts to ``<base>/v1/messages``: drop a trailing slash or ``/v1`` a user may have typed."""
    url = (base_url or DEFAULT_BASE_URL).rstrip("/")
    return url.removesuffix("/v1") or DEFAULT_BASE_URL


class _UsageTally:
    def __init__(self) -> None:
        self.seen = False
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None

    def add(self, raw: dict[str, Any]) -> None:
        # message_start carries the input count; message_delta the cumulative output (and maybe input) count.
        self.seen = True
        if _is_count(raw.get("input_tokens")):
            self.input_tokens = raw["input_tokens"]
        if _is_count(raw.get("output_tokens")):
            self.output_tokens = raw["output_tokens"]


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_event(event: Any, tally: _UsageTally) -> str | None:
    """The text of a text delta (from the event's JSON); usage goes to the tally; a bad shape is a malformed
    stream."""
    try:
        kind = event["type"]
        if kind == "content_block_delta":
            delta = event["delta"]
            if delta["type"] == "text_delta":
                if not isinstance(delta["text"], str):
                    raise ProviderError("provider")
                return delta["text"]
        elif kind == "message_start":
            tally.add(event["message"]["usage"])
        elif kind == "message_delta":
            tally.add(event["usage"])
    except (KeyError, TypeError, AttributeError) as exc:  # a missing field, or a list where an object belongs
        raise ProviderError("provider") from exc
    return None
