"""SDK and transport exceptions → a classified ProviderError, by exception class and status code only."""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from sidecar.providers.base import FRIENDLY_MESSAGES, ErrorType, ProviderError

MISSING_KEY_MESSAGE = "This agent's LLM configuration has no API key. Add one in its LLM settings."
DROPPED_STREAM_MESSAGE = "The connection to the provider dropped in the middle of the reply. Try again in a moment."

# The contract's table; every status not listed here is "unknown".
_STATUS_TYPES: dict[int, ErrorType] = {
    401: "auth",
    403: "auth",
    429: "rate_limit",
    400: "validation",
    413: "validation",
    422: "validation",
    404: "configuration",
    408: "timeout",
    500: "provider",
    502: "provider",
    503: "provider",
    504: "provider",
    529: "provider",
}
# Sharper wording where the status says more than the error type does.
_STATUS_MESSAGES: dict[int, str] = {
    403: "The provider refused access with this API key. Check the key and its permissions in this agent's "
    "LLM settings.",
    413: "The conversation is too long for this model. Exclude some messages or start a new conversation.",
}


def friendly_message(error_type: str) -> str:
    """The end-user sentence for an error type (unknown types get the "unknown" sentence)."""
    return FRIENDLY_MESSAGES.get(error_type, FRIENDLY_MESSAGES["unknown"])


def missing_key_error() -> ProviderError:
    return ProviderError("configuration", safe_message=MISSING_KEY_MESSAGE)


def dropped_stream_error() -> ProviderError:
    """A stream that ended before the provider's final event: the connection went, the reply is incomplete."""
    return ProviderError("network", safe_message=DROPPED_STREAM_MESSAGE)


def classify_sdk_error(
    exc: BaseException, sdk_module: str | None, in_stream_statuses: Mapping[str, int] | None = None
) -> ProviderError:
    """Map any exception raised while calling a provider through ``sdk_module`` to a ProviderError (never by
    message text). ``in_stream_statuses`` maps the error type of an error event inside a 200 stream to the HTTP
    status it stands for; without it such an error counts as a 500."""
    if isinstance(exc, ProviderError):
        return exc
    return (
        _classify_sdk(exc, sdk_module, in_stream_statuses or {}) or _classify_transport(exc) or ProviderError("unknown")
    )


def context_length_error(prompt_tokens: int | None = None, limit_tokens: int | None = None) -> ProviderError:
    """The prompt did not fit the model's context (CONTRACT §5c): not retried by the normal retry loop; the engine
    rebuilds the request once with a smaller budget, cut by the overflow when the provider gave both counts."""
    overflow = None
    if prompt_tokens is not None and limit_tokens is not None and prompt_tokens > limit_tokens:
        overflow = prompt_tokens - limit_tokens
    return ProviderError("context_length", status_code=400, overflow_tokens=overflow)


def token_counts(message: str, pattern: re.Pattern[str]) -> tuple[int | None, int | None]:
    """The prompt and limit token counts a provider's overflow message states (``pattern`` names the groups
    ``prompt`` and ``limit``), or ``(None, None)`` when it states none."""
    match = pattern.search(message)
    if match is None:
        return None, None
    return int(match.group("prompt")), int(match.group("limit"))


def error_for_status(status: int, retry_after_s: float | None = None) -> ProviderError:
    """The contract's table: an HTTP status → its error type, with sharper wording where the status says more."""
    error_type = _STATUS_TYPES.get(status, "unknown")
    return ProviderError(
        error_type,
        status_code=status,
        retry_after_s=retry_after_s,
        safe_message=_STATUS_MESSAGES.get(status),
    )


def _classify_sdk(exc: BaseException, sdk_module: str | None, in_stream: Mapping[str, int]) -> ProviderError | None:
    # An SDK that was never imported cannot have raised: don't pay its import cost to find that out.
    sdk: Any = sys.modules.get(sdk_module) if sdk_module else None
    if sdk is None:
        return None
    if isinstance(exc, sdk.APITimeoutError):  # a subclass of APIConnectionError: check it first
        return ProviderError("timeout")
    if isinstance(exc, sdk.APIConnectionError):
        # The SDK wraps a base URL httpx2 cannot use ("localhost:11434/v1") as a connection error.
        return _classify_transport(exc.__cause__) if _is_bad_url(exc.__cause__) else ProviderError("network")
    if isinstance(exc, sdk.APIStatusError):
        return error_for_status(_status_of(exc, in_stream), _retry_after_s(exc.response.headers))
    if isinstance(exc, sdk.APIError):
        # A response that broke the schema, or an error event inside an OpenAI stream.
        return ProviderError("provider")
    return None


def _status_of(exc: Any, in_stream: Mapping[str, int]) -> int:
    status = int(exc.status_code)
    if status < 400:  # an error inside a successful stream: the provider's fault unless its type says otherwise
        return in_stream.get(getattr(exc, "type", None) or "", 500)
    return status


def _classify_transport(exc: BaseException) -> ProviderError | None:
    httpx2: Any = sys.modules.get("httpx2")
    if httpx2 is not None:
        if _is_bad_url(exc):
            return ProviderError("configuration")
        # Both SDKs let httpx2 errors raised while reading a stream's body escape unwrapped.
        if isinstance(exc, httpx2.TimeoutException):
            return ProviderError("timeout")
        if isinstance(exc, httpx2.DecodingError):
            return ProviderError("provider")
        if isinstance(exc, httpx2.TransportError):
            return ProviderError("network")
    if isinstance(exc, json.JSONDecodeError):  # a malformed SSE data line
        return ProviderError("provider")
    if isinstance(exc, TimeoutError):
        return ProviderError("timeout")
    if isinstance(exc, OSError):  # refused, reset, DNS (socket.gaierror)
        return ProviderError("network")
    return None


def _is_bad_url(exc: BaseException | None) -> bool:
    httpx2: Any = sys.modules.get("httpx2")
    return httpx2 is not None and isinstance(exc, (httpx2.InvalidURL, httpx2.UnsupportedProtocol))


def _retry_after_s(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` (ms), else ``retry-after`` (seconds or an HTTP date); None if absent."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) / divisor
        except ValueError:
            value = _seconds_until(raw) if name == "retry-after" else None
        if value is not None and math.isfinite(value):
            return max(0.0, value)
    return None


def _seconds_until(http_date: str) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()
