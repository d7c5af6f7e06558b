"""The Anthropic provider: streamed Messages through the official SDK's client, raw events read by hand.

The body is posted as built (`build_body` makes the exact wire JSON) with the client's public ``post``, and the
stream yields each event's JSON as a plain dict instead of a pydantic model per event. The client still supplies
auth, base URL, ``anthropic-version``, the connection pool, the status-error classes, and the stream's ``ping``
skipping and in-stream ``error`` events (raised as status errors).

A reply has ended at ``message_stop``; a stream that closes before it is a dropped stream. A server that answers
the streaming request with one whole JSON message is read as a single chunk.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import AsyncIterator
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
    error_for_status,
    missing_key_error,
    token_counts,
)
from sidecar.providers.spec import ProviderSpec, RequestParts, SamplingLimits, sampling_fields
from sidecar.providers.tls import shared_ssl_context

if TYPE_CHECKING:
    import ssl

    from anthropic import AsyncAnthropic

DEFAULT_BASE_URL = "https://api.anthropic.com"
# Generous on purpose: the orchestrator enforces first-token and stall timeouts itself.
REQUEST_TIMEOUT_S = 600.0
CLOSE_TIMEOUT_S = 2.0
SDK_MODULE = "anthropic"
# stop_reason → stop reason; any other reason (tool_use, pause_turn) ended the reply normally.
STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end",
    "stop_sequence": "end",
    "max_tokens": "max_tokens",
    "refusal": "content_filter",
}
# "prompt is too long: N tokens > M maximum" (CONTRACT §5 names this text; the counts may be missing).
_TOO_LONG = "prompt is too long"
_OVERFLOW_COUNTS = re.compile(r"(?P<prompt>\d+) tokens > (?P<limit>\d+) maximum")
# Anthropic reports failures inside a 200 stream as an `error` event whose `error.type` is a stable code.
_ERROR_TYPE_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class AnthropicProvider:
    """One AsyncAnthropic client, built on the first call (so the SDK is imported only when used)."""

    def __init__(self, settings: ProviderSettings) -> None:
        self._settings = settings
        self._client: AsyncAnthropic | None = None
        self._stream_cls: Any = None

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[str | StreamEnd]:
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
            raise classify_error(exc) from exc
        end: StreamEnd | None = None
        try:
            if is_whole_json_body(stream.response.headers):
                text, end = _read_message(json.loads(await stream.response.aread()))
                if text:
                    yield text
            else:
                tally = _Tally()
                async for event in stream:
                    text = _read_event(event, tally)
                    if text:
                        yield text
                end = tally.end() if tally.stopped else None  # no message_stop: a dropped stream
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
        """``GET /v1/models`` through the SDK's ``models.list``, which follows ``has_more``/``last_id`` page by
        page."""
        try:
            client = await self._get_client()
            return await collect_model_ids(client.models.list(timeout=MODEL_LIST_TIMEOUT_S))
        except ProviderError:
            raise
        except Exception as exc:
            raise classify_error(exc) from exc

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
        base_url=_trim_base_url(settings.base_url or DEFAULT_BASE_URL) or DEFAULT_BASE_URL,
        timeout=REQUEST_TIMEOUT_S,
        max_retries=0,  # the orchestrator retries, with the contract's backoff
        default_headers=headers,
        # The SDK's own defaults (limits, redirects), with the shared TLS context instead of a new one.
        http_client=DefaultAsyncHttpxClient(verify=ssl_context),
    )


def _trim_base_url(url: str) -> str:
    """The SDK posts to ``<base>/v1/messages``: drop a trailing slash or ``/v1`` a user may have typed."""
    url = url.rstrip("/")
    return url.removesuffix("/v1").rstrip("/") if url.endswith("/v1") else url


class _Tally:
    """What the events so far said about usage and the end of the reply."""

    def __init__(self) -> None:
        self.seen_usage = False
        self.counts: dict[str, int] = {}  # the API's usage field → its latest count
        self.stop_reason: str | None = None
        self.stopped = False

    def add(self, raw: dict[str, Any] | None) -> None:
        # message_start carries the input counts; message_delta the cumulative output (and maybe input) counts.
        # Some Anthropic-compatible servers send no usage at all: the reply's usage is then estimated.
        if raw is None:
            return
        self.seen_usage = True
        for field in _USAGE_FIELDS:
            if _is_count(raw.get(field)):
                self.counts[field] = raw[field]

    def end(self) -> StreamEnd:
        usage = self._usage() if self.seen_usage else None
        return StreamEnd(usage, None if self.stop_reason is None else _stop_reason(self.stop_reason))

    def _usage(self) -> Usage:
        # Anthropic's `input_tokens` is only the uncached part; the sidecar's input count includes cache reads
        # and cache writes (Usage's one meaning for every provider).
        inputs = [self.counts[f] for f in _INPUT_FIELDS if f in self.counts]
        return Usage(
            input_tokens=sum(inputs) if inputs else None,
            output_tokens=self.counts.get("output_tokens"),
            cached_input_tokens=self.counts.get("cache_read_input_tokens"),
        )


_INPUT_FIELDS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
_USAGE_FIELDS = (*_INPUT_FIELDS, "output_tokens")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_event(event: Any, tally: _Tally) -> str | None:
    """The text of a text delta (from the event's JSON); usage and the stop go to the tally; a bad shape is a
    malformed stream."""
    try:
        kind = event["type"]
        if kind == "content_block_delta":
            delta = event["delta"]
            if delta["type"] == "text_delta":
                return _checked_text(delta["text"])
        elif kind == "message_start":
            tally.add(event["message"].get("usage"))
        elif kind == "message_delta":
            tally.add(event.get("usage"))
            tally.stop_reason = _checked_reason(event["delta"].get("stop_reason")) or tally.stop_reason
        elif kind == "message_stop":
            tally.stopped = True
    except (KeyError, TypeError, AttributeError) as exc:  # a missing field, or a list where an object belongs
        raise ProviderError("provider") from exc
    return None


def _read_message(message: Any) -> tuple[str, StreamEnd]:
    """A whole non-streamed message (its JSON) read as one chunk: its text blocks, usage and stop reason."""
    try:
        if message.get("type") == "error":  # an error object answered with a 200
            error_type = message["error"]["type"]
            raise error_for_status(_ERROR_TYPE_STATUS.get(error_type, 500))
        text = "".join(_checked_text(b["text"]) for b in message["content"] if b.get("type") == "text")
        tally = _Tally()
        tally.add(message.get("usage"))
        tally.stop_reason = _checked_reason(message.get("stop_reason"))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ProviderError("provider") from exc
    return text, tally.end()


def _checked_text(text: Any) -> str:
    if not isinstance(text, str):
        raise ProviderError("provider")
    return text


def _checked_reason(reason: Any) -> str | None:
    if reason is not None and not isinstance(reason, str):
        raise ProviderError("provider")
    return reason


def _stop_reason(reason: str) -> StopReason:
    return STOP_REASONS.get(reason, "end")


def classify_error(exc: BaseException) -> ProviderError:
    overflow = _context_overflow(exc)
    return overflow if overflow is not None else classify_sdk_error(exc, SDK_MODULE, _ERROR_TYPE_STATUS)


def _context_overflow(exc: BaseException) -> ProviderError | None:
    """A 400 ``invalid_request_error`` saying "prompt is too long": the API marks this case by its message only."""
    sdk: Any = sys.modules.get(SDK_MODULE)
    if sdk is None or not isinstance(exc, sdk.BadRequestError) or exc.type != "invalid_request_error":
        return None
    message = str(exc.api_message or "")
    if not message.lower().startswith(_TOO_LONG):
        return None
    return context_length_error(*token_counts(message, _OVERFLOW_COUNTS))


def build_body(parts: RequestParts) -> dict[str, Any]:
    """The system prompt is top-level; ``max_tokens`` is required."""
    body: dict[str, Any] = {
        "model": parts.model,
        "system": parts.system_prompt,
        "messages": parts.turns,
        "max_tokens": parts.sampling.max_tokens,
        "stream": True,
    }
    body.update(sampling_fields(parts.sampling))
    return body


SPEC = ProviderSpec(
    name="anthropic",
    sdk_module=SDK_MODULE,
    uses_api_key=True,
    build_body=build_body,
    open=AnthropicProvider,
    classify_error=classify_error,
    sampling_limits=SamplingLimits(max_temperature=1.0, one_of_temperature_and_top_p=True),
    normalize_base_url=_trim_base_url,
)
