"""Each provider's classify_error as a table: SDK and transport exceptions in, error type and retry facts out."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import anthropic
import httpx2
import openai
import pytest

from sidecar.providers.base import ERROR_TYPES, FRIENDLY_MESSAGES, ProviderError
from sidecar.providers.errors import friendly_message
from sidecar.providers.registry import spec_for

REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/x")
SDKS = {"openai": openai, "anthropic": anthropic}


def classify(exc: BaseException, provider: str) -> ProviderError:
    return spec_for(provider).classify_error(exc)


def _response(status: int, **headers: str) -> httpx2.Response:
    return httpx2.Response(status, headers=headers, request=REQUEST)


def _status_error(sdk: str, status: int, body: object = None, **headers: str) -> Exception:
    return SDKS[sdk].APIStatusError("boom sk-secret", response=_response(status, **headers), body=body)


STATUS_TABLE = [
    (400, "validation", False),
    (401, "auth", False),
    (403, "auth", False),
    (404, "configuration", False),
    (408, "timeout", True),
    (413, "validation", False),
    (422, "validation", False),
    (429, "rate_limit", True),
    (500, "provider", True),
    (502, "provider", True),
    (503, "provider", True),
    (504, "provider", True),
    (529, "provider", True),
    (402, "unknown", False),
    (409, "unknown", False),
    (501, "unknown", False),
]


@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.parametrize(("status", "error_type", "retryable"), STATUS_TABLE)
def test_a_status_error_maps_by_its_code(sdk: str, status: int, error_type: str, retryable: bool) -> None:
    error = classify(_status_error(sdk, status), sdk)
    assert (error.error_type, error.retryable, error.status_code) == (error_type, retryable, status)
    assert "sk-secret" not in str(error) and "boom" not in str(error)


@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.parametrize(
    ("make", "error_type"),
    [
        (lambda sdk: sdk.APITimeoutError(request=REQUEST), "timeout"),
        (lambda sdk: sdk.APIConnectionError(request=REQUEST), "network"),
        (lambda sdk: sdk.APIError("in-stream error", REQUEST, body={"type": "server_error"}), "provider"),
        (lambda sdk: sdk.APIResponseValidationError(_response(200), None), "provider"),
        (lambda sdk: sdk.RateLimitError("x", response=_response(429), body=None), "rate_limit"),
        (lambda sdk: sdk.InternalServerError("x", response=_response(529), body=None), "provider"),
    ],
    ids=["timeout", "connection", "api-error", "validation-error", "rate-limit-class", "overloaded"],
)
def test_sdk_exception_classes_map_to_their_types(sdk: str, make: Callable, error_type: str) -> None:
    assert classify(make(SDKS[sdk]), sdk).error_type == error_type


@pytest.mark.parametrize(
    ("exc", "error_type"),
    [
        (httpx2.RemoteProtocolError("peer closed connection", request=REQUEST), "network"),
        (httpx2.ReadError("reset", request=REQUEST), "network"),
        (httpx2.ConnectError("refused", request=REQUEST), "network"),
        (httpx2.ReadTimeout("slow", request=REQUEST), "timeout"),
        (httpx2.DecodingError("bad gzip", request=REQUEST), "provider"),
        (httpx2.UnsupportedProtocol("no scheme", request=REQUEST), "configuration"),
        (httpx2.InvalidURL("Invalid port"), "configuration"),
        (json.JSONDecodeError("Expecting value", "{", 1), "provider"),
        (ConnectionResetError(104, "Connection reset by peer"), "network"),
        (ConnectionRefusedError(111, "Connection refused"), "network"),
        (socket.gaierror(-2, "Name or service not known"), "network"),
        (TimeoutError(), "timeout"),
        (ValueError("something"), "unknown"),
        (RuntimeError("something"), "unknown"),
        (KeyError("choices"), "unknown"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v,
)
@pytest.mark.parametrize("provider", ["openai", "anthropic", "demo"])
def test_transport_and_other_exceptions_map_by_class(exc: BaseException, error_type: str, provider: str) -> None:
    error = classify(exc, provider)
    assert (error.error_type, error.status_code, error.retry_after_s) == (error_type, None, None)


def test_a_provider_error_passes_through_unchanged() -> None:
    original = ProviderError("rate_limit", retry_after_s=3.0)
    assert classify(original, "openai") is original


def test_openai_and_anthropic_classes_are_not_confused() -> None:
    # Same shape, distinct classes: an anthropic error classified as openai's is not a status error.
    assert classify(_status_error("anthropic", 401), "anthropic").error_type == "auth"
    assert classify(_status_error("anthropic", 401), "openai").error_type == "unknown"


@pytest.mark.parametrize(
    ("error_kind", "error_type"),
    [
        ("overloaded_error", "provider"),
        ("rate_limit_error", "rate_limit"),
        ("api_error", "provider"),
        ("authentication_error", "auth"),
        ("something_new", "provider"),
    ],
)
def test_an_anthropic_error_event_inside_a_stream_maps_by_its_error_type(error_kind: str, error_type: str) -> None:
    body = {"type": "error", "error": {"type": error_kind, "message": "x"}}
    error = classify(_status_error("anthropic", 200, body), "anthropic")
    assert error.error_type == error_type


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: retry now
        ({"retry-after": "not a date"}, None),
    ],
)
def test_retry_after_comes_from_the_headers(headers: dict[str, str], expected: float | None) -> None:
    error = classify(_status_error("openai", 429, **headers), "openai")
    assert error.retry_after_s == expected


def test_retry_after_may_be_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    error = classify(_status_error("anthropic", 503, **{"retry-after": when}), "anthropic")
    assert error.retry_after_s is not None and 100 < error.retry_after_s <= 120


@pytest.mark.parametrize("error_type", ERROR_TYPES)
def test_every_error_type_has_a_friendly_sentence(error_type: str) -> None:
    message = friendly_message(error_type)
    assert message == FRIENDLY_MESSAGES[error_type] == str(ProviderError(error_type))
    assert message.endswith(".") and "Error" not in message and "http" not in message


def test_an_unknown_error_type_gets_the_unknown_sentence() -> None:
    assert friendly_message("martian") == FRIENDLY_MESSAGES["unknown"]


@pytest.mark.parametrize("sdk", SDKS)
def test_a_connection_error_caused_by_an_unusable_base_url_is_configuration(sdk: str) -> None:
    try:
        try:
            raise httpx2.UnsupportedProtocol("Request URL is missing an 'http://' or 'https://' protocol.")
        except httpx2.UnsupportedProtocol as cause:
            raise SDKS[sdk].APIConnectionError(request=REQUEST) from cause
    except Exception as exc:
        error = classify(exc, sdk)
    assert (error.error_type, error.retryable) == ("configuration", False)
