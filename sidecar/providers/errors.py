"""SDK and transport exceptions → a classified ProviderError, by exception class and status code only."""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from sidecar.providers.base import FRIENDLY_MESSAGES, ErrorType, ProviderError, ProviderName

MISSING_KEY_MESSAGE = "This agent's LLM configuration has no API key. Add one in its LLM settings."

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
# Anthropic reports failures inside a 200 stream as an `error` event whose `error.type` is a stable code.
_ANTHROPIC_STREAM_ERROR_STATUS: dict[str, int] = {
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
_SDK_MODULES: dict[str, str] = {"openai": "openai", "anthropic": "anthropic"}


def friendly_message(error_type: str) -> str:
    """The end-user sentence for an error type (unknown types get the "unknown" sentence)."""
    return FRIENDLY_MESSAGES.get(error_type, FRIENDLY_MESSAGES["unknown"])


def missing_key_error() -> ProviderError:
    return ProviderError("configuration", safe_message=MISSING_KEY_MESSAGE)


def classify_provider_error(exc: BaseException, provider: ProviderName) -> ProviderError:
    """Map any exception raised while calling ``provider`` to a ProviderError (never by message text)."""
    if isinstance(exc, ProviderError):
        return exc
    return _classify_sdk(exc, provider) or _classify_transport(exc) or ProviderError("unknown")


def _classify_sdk(exc: BaseException, provider: ProviderName) -> ProviderError | None:
    module_name = _SDK_MODULES.get(provider)
    # An SDK that was never imported cannot have raised: don't pay its import cost to find that out.
    sdk: Any = sys.modules.get(module_name) if module_name else None
    if sdk is None:
        return None
    if isinstance(exc, sdk.APITimeoutError):  # a subclass of APIConnectionError: check it first
        return ProviderError("timeout")
    if isinstance(exc, sdk.APIConnectionError):
        # The SDK wraps a base URL httpx2 cannot use ("localhost:11434/v1") as a connection error.
        return _classify_transport(exc.__cause__) if _is_bad_url(exc.__cause__) else ProviderError("network")
    if isinstance(exc, sdk.APIStatusError):
        return _from_status(_status_of(exc, provider), _retry_after_s(exc.response.headers))
    if isinstance(exc, sdk.APIError):
        # A response that broke the schema, or an error event inside an OpenAI stream.
        return ProviderError("provider")
    return None


def _status_of(exc: Any, provider: ProviderName) -> int:
    status = int(exc.status_code)
    if status < 400 and provider == "anthropic":
        return _ANTHROPIC_STREAM_ERROR_STATUS.get(getattr(exc, "type", None) or "", 500)
    return status if status >= 400 else 500  # an error inside a successful stream is the provider's fault


def _from_status(status: int, retry_after_s: float | None) -> ProviderError:
    error_type = _STATUS_TYPES.get(status, "unknown")
    return ProviderError(
        error_type,
        status_code=status,
        retry_after_s=retry_after_s,
        safe_message=_STATUS_MESSAGES.get(status),
    )


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
