"""The Anthropic provider: streamed Messages through the official SDK, raw events read by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio

from sidecar.providers.base import ProviderError, ProviderSettings, Usage, omitted_env_headers, sdk_call_kwargs
from sidecar.providers.errors import classify_provider_error, missing_key_error

if TYPE_CHECKING:
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

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[str | Usage]:
        try:
            client = self._get_client()
            create = client.messages.create
            stream = await create(**sdk_call_kwargs(create, body))
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

    def _get_client(self) -> AsyncAnthropic:
        if self._client is None:
            self._client = _open_client(self._settings)
        return self._client


def _open_client(settings: ProviderSettings) -> AsyncAnthropic:
    from anthropic import AsyncAnthropic, Omit

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

    def add(self, raw: Any) -> None:
        # message_start carries the input count; message_delta the cumulative output (and maybe input) count.
        self.seen = True
        if getattr(raw, "input_tokens", None) is not None:
            self.input_tokens = raw.input_tokens
        if getattr(raw, "output_tokens", None) is not None:
            self.output_tokens = raw.output_tokens


def _read_event(event: Any, tally: _UsageTally) -> str | None:
    """The text of a text delta; usage goes to the tally; an unexpected shape is a malformed stream."""
    try:
        kind = event.type
        if kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                if not isinstance(delta.text, str):
                    raise ProviderError("provider")
                return delta.text
        elif kind == "message_start":
            tally.add(event.message.usage)
        elif kind == "message_delta":
            tally.add(event.usage)
    except AttributeError as exc:
        raise ProviderError("provider") from exc
    return None
