"""The OpenAI (and OpenAI-compatible) provider: streamed Chat Completions through the official SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio

from sidecar.providers.base import ProviderError, ProviderSettings, Usage, omitted_env_headers, sdk_call_kwargs
from sidecar.providers.errors import classify_provider_error, missing_key_error

if TYPE_CHECKING:
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
        self._request_options: dict[str, Any] = {}

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[str | Usage]:
        try:
            client = self._get_client()
            create = client.chat.completions.create
            stream = await create(**sdk_call_kwargs(create, body), **self._request_options)
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

    def _get_client(self) -> AsyncOpenAI:
        if self._client is None:
            self._client = _open_client(self._settings)
            if not self._settings.use_auth_header:
                from openai import Omit

                # OpenAI-compatible servers such as Ollama want no key at all. The SDK only accepts a missing
                # Authorization header when the request itself omits it; the body stays as given.
                self._request_options = {"extra_headers": {"Authorization": Omit()}}
        return self._client


def _open_client(settings: ProviderSettings) -> AsyncOpenAI:
    from openai import AsyncOpenAI, Omit

    if settings.use_auth_header and not settings.api_key:
        raise missing_key_error()
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
    )


def _read_chunk(chunk: Any) -> tuple[str | None, Usage | None]:
    """The text delta and usage of one chunk; an unexpected shape is a malformed stream."""
    try:
        text = None
        for choice in chunk.choices or ():
            if choice.index == 0 and choice.delta is not None:
                text = choice.delta.content
        raw = chunk.usage
        usage = Usage(raw.prompt_tokens, raw.completion_tokens) if raw is not None else None
    except (AttributeError, TypeError) as exc:
        raise ProviderError("provider") from exc
    if text is not None and not isinstance(text, str):
        raise ProviderError("provider")
    return text, usage
