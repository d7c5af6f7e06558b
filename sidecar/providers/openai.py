"""The OpenAI (and OpenAI-compatible) provider: streamed Chat Completions through the official SDK's client.

The body is posted as built (`build_body` makes the exact wire JSON) with the client's public ``post``, and the
stream yields plain dicts: ``chat.completions.create`` would re-walk every message through its typed transform
(~22 ms for 100 messages) and build a pydantic chunk per SSE event (~0.8 ms each), all on the event loop. The
client still supplies auth, base URL, headers, the connection pool, the status-error classes, and the stream's
``[DONE]`` and in-stream ``error`` handling.

A reply has ended when a chunk carries a ``finish_reason`` (the SDK consumes ``[DONE]``); a stream that closes
before one is a dropped stream. A server that answers the streaming request with one whole JSON completion is
read as a single chunk.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import anyio

from sidecar.providers.base import (
    MODEL_LIST_TIMEOUT_S,
    ProviderError,
    ProviderSettings,
    StopReason,
    StreamEnd,
    Usage,
    collect_model_ids,
    is_whole_json_body,
    omitted_env_headers,
)
from sidecar.providers.errors import (
    classify_sdk_error,
    context_length_error,
    dropped_stream_error,
    missing_key_error,
    token_counts,
)
from sidecar.providers.spec import ProviderSpec, RequestParts, SamplingLimits, sampling_fields
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
SDK_MODULE = "openai"
# finish_reason → stop reason; any other reason (tool_calls, function_call) ended the reply normally.
STOP_REASONS: dict[str, StopReason] = {"stop": "end", "length": "max_tokens", "content_filter": "content_filter"}
# The o-series and the gpt-5 family take no temperature or top_p, and max_completion_tokens.
_REASONING_MODELS = re.compile(r"^(o\d|gpt-5)")
# "This model's maximum context length is M tokens. However, your messages resulted in N tokens."
_OVERFLOW_COUNTS = re.compile(
    r"maximum context length is (?P<limit>\d+) tokens.*?resulted in (?P<prompt>\d+) tokens", re.S
)


class OpenAIProvider:
    """One AsyncOpenAI client, built on the first call (so the SDK is imported only when used)."""

    def __init__(self, settings: ProviderSettings) -> None:
        self._settings = settings
        self._client: AsyncOpenAI | None = None
        self._stream_cls: Any = None
        self._request_options: dict[str, Any] = {}

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[str | StreamEnd]:
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
            raise classify_error(exc) from exc
        end: StreamEnd | None = None
        try:
            if is_whole_json_body(stream.response.headers):
                text, end = _read_completion(json.loads(await stream.response.aread()))
                if text:
                    yield text
            else:
                usage: Usage | None = None
                finish: str | None = None
                async for chunk in stream:
                    text, chunk_usage, chunk_finish = _read_chunk(chunk)
                    usage, finish = chunk_usage or usage, chunk_finish or finish
                    if text:
                        yield text
                # The usage chunk follows the finish_reason one, so the end is known only here.
                end = None if finish is None else StreamEnd(usage, _stop_reason(finish))
        except ProviderError:
            raise
        except Exception as exc:
            raise classify_error(exc) from exc
        finally:
            # Shielded and bounded, so a cancelled stream still releases its connection.
            with anyio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
                await stream.close()
        if end is None:
            raise dropped_stream_error()
        yield end

    async def list_models(self) -> list[str]:
        """``GET /models`` through the SDK's ``models.list`` (one page, as the API sends it)."""
        try:
            client = await self._get_client()
            models = client.models.list(
                extra_headers=self._request_options.get("headers"), timeout=MODEL_LIST_TIMEOUT_S
            )
            return await collect_model_ids(models)
        except ProviderError:
            raise
        except Exception as exc:
            raise classify_error(exc) from exc

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


def _read_chunk(chunk: Any) -> tuple[str | None, Usage | None, str | None]:
    """The text delta, usage and finish_reason of one chunk (its JSON); an unexpected shape is a malformed stream."""
    try:
        text = finish = None
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) == 0:
                delta = choice.get("delta")
                text = None if delta is None else delta.get("content")
                finish = choice.get("finish_reason")
        usage = _read_usage(chunk.get("usage"))
    except (AttributeError, TypeError) as exc:  # a list or a string where an object belongs
        raise ProviderError("provider") from exc
    return _checked_text(text), usage, _checked_finish(finish)


def _read_completion(completion: Any) -> tuple[str | None, StreamEnd]:
    """A whole non-streamed completion (its JSON) read as one chunk."""
    try:
        if completion.get("error") is not None:  # an error object answered with a 200
            raise ProviderError("provider")
        choice = next((c for c in completion.get("choices") or () if c.get("index", 0) == 0), None)
        message = {} if choice is None else choice.get("message") or {}
        text, finish = message.get("content"), None if choice is None else choice.get("finish_reason")
        usage = _read_usage(completion.get("usage"))
    except (AttributeError, TypeError) as exc:
        raise ProviderError("provider") from exc
    finish = _checked_finish(finish)
    return _checked_text(text), StreamEnd(usage, None if finish is None else _stop_reason(finish))


def _read_usage(raw: Any) -> Usage | None:
    """``prompt_tokens`` already includes the cached part and ``completion_tokens`` the reasoning part; routers
    (OpenRouter and other OpenAI-compatible proxies) add what they charged as ``cost``, in US dollars."""
    if raw is None:
        return None
    return Usage(
        _count(raw.get("prompt_tokens")),
        _count(raw.get("completion_tokens")),
        cached_input_tokens=_count(_details(raw, "prompt_tokens_details").get("cached_tokens")),
        reasoning_tokens=_count(_details(raw, "completion_tokens_details").get("reasoning_tokens")),
        cost_micro_usd=_micro_usd(raw.get("cost")),
    )


def _details(usage: Any, key: str) -> dict[str, Any]:
    details = usage.get(key)
    return details if isinstance(details, dict) else {}  # absent or null on servers that do not break it down


def _micro_usd(dollars: Any) -> int | None:
    """A reported dollar amount in whole micro-dollars; anything but a finite, non-negative number is ignored."""
    if isinstance(dollars, bool) or not isinstance(dollars, int | float) or not math.isfinite(dollars) or dollars < 0:
        return None
    return int((Decimal(repr(dollars)) * 1_000_000).to_integral_value(ROUND_HALF_UP))


def _checked_text(text: Any) -> str | None:
    if text is not None and not isinstance(text, str):
        raise ProviderError("provider")
    return text


def _checked_finish(finish: Any) -> str | None:
    # Some compatible servers send "" on the chunks before the last one.
    if finish is not None and not isinstance(finish, str):
        raise ProviderError("provider")
    return finish or None


def _stop_reason(finish: str) -> StopReason:
    return STOP_REASONS.get(finish, "end")


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def classify_error(exc: BaseException) -> ProviderError:
    overflow = _context_overflow(exc)
    return overflow if overflow is not None else classify_sdk_error(exc, SDK_MODULE)


def _context_overflow(exc: BaseException) -> ProviderError | None:
    """A 400 whose error code is ``context_length_exceeded``: the prompt is over the model's context."""
    sdk: Any = sys.modules.get(SDK_MODULE)
    if sdk is None or not isinstance(exc, sdk.BadRequestError) or exc.code != "context_length_exceeded":
        return None
    body = exc.body if isinstance(exc.body, dict) else {}
    return context_length_error(*token_counts(str(body.get("message") or ""), _OVERFLOW_COUNTS))


def build_body(parts: RequestParts) -> dict[str, Any]:
    """The system prompt is the first message; usage comes in a last chunk; reasoning models get only a budget."""
    body: dict[str, Any] = {
        "model": parts.model,
        "messages": [{"role": "system", "content": parts.system_prompt}, *parts.turns],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    sampling = parts.sampling
    if sampling.uses_max_completion_tokens:
        body["max_completion_tokens"] = sampling.max_tokens
        return body
    body.update(sampling_fields(sampling))
    body["max_tokens"] = sampling.max_tokens
    return body


SPEC = ProviderSpec(
    name="openai",
    sdk_module=SDK_MODULE,
    uses_api_key=True,
    build_body=build_body,
    open=OpenAIProvider,
    classify_error=classify_error,
    sampling_limits=SamplingLimits(max_temperature=2.0, reasoning_models=_REASONING_MODELS),
)
