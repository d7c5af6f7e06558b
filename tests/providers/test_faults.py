"""Every fault the fake can produce, through the real SDKs, lands in the contract's error table."""

from __future__ import annotations

import socket

import pytest

from sidecar.providers import anthropic as anthropic_provider
from sidecar.providers import openai as openai_provider
from sidecar.providers.base import FRIENDLY_MESSAGES, ProviderError, ProviderSettings
from sidecar.providers.factory import open_provider
from tests.fake_provider import FakeProvider
from tests.providers.helpers import KEY, anthropic_body, body_for, collect, openai_body, settings_for

pytestmark = pytest.mark.anyio
PROVIDERS = ["openai", "anthropic"]

# model → (errorType, retryable, statusCode, retry_after_s)
FAULTS = {
    "m-err-400": ("validation", False, 400, None),
    "m-err-401": ("auth", False, 401, None),
    "m-err-403": ("auth", False, 403, None),
    "m-err-404": ("configuration", False, 404, None),
    "m-err-408": ("timeout", True, 408, None),
    "m-err-413": ("validation", False, 413, None),
    "m-err-422": ("validation", False, 422, None),
    "m-err-429": ("rate_limit", True, 429, None),
    "m-err-429-retryafter-7": ("rate_limit", True, 429, 7.0),
    "m-err-429-retryafterms-1500": ("rate_limit", True, 429, 1.5),
    "m-err-429-retryafter-9-retryafterms-250": ("rate_limit", True, 429, 0.25),
    "m-err-500": ("provider", True, 500, None),
    "m-err-502": ("provider", True, 502, None),
    "m-err-503-retryafter-2": ("provider", True, 503, 2.0),
    "m-err-504": ("provider", True, 504, None),
    "m-err-529": ("provider", True, 529, None),
    "m-err-418": ("unknown", False, 418, None),
    "m-malformed": ("provider", True, None, None),
    "m-midstream": ("provider", True, None, None),
    "m-reset": ("network", True, None, None),
}

LATE_SYSTEM = [{"role": "user", "content": "Hi"}, {"role": "system", "content": "Be brief."}]


async def _failure(provider_name: str, settings: ProviderSettings, body: dict[str, object]) -> ProviderError:
    provider = open_provider(settings)
    try:
        with pytest.raises(ProviderError) as caught:
            await collect(provider, body)
    finally:
        await provider.aclose()
    return caught.value


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("model", FAULTS)
async def test_each_fault_maps_to_its_error_type(fake: FakeProvider, name: str, model: str) -> None:
    error = await _failure(name, settings_for(name, fake), body_for(name, model))
    error_type, retryable, status, retry_after = FAULTS[model]
    assert (error.error_type, error.retryable, error.retry_after_s) == (error_type, retryable, retry_after)
    if name == "openai" or model != "m-midstream":
        assert error.status_code == status
    assert str(error) == error.safe_message
    assert KEY not in str(error) and "127.0.0.1" not in str(error) and "Error" not in str(error)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_fault_after_text_keeps_the_text_already_yielded(fake: FakeProvider, name: str) -> None:
    provider = open_provider(settings_for(name, fake))
    texts: list[str] = []
    try:
        with pytest.raises(ProviderError) as caught:
            async for item in provider.stream(body_for(name, "m-words-20-reset")):
                texts.append(str(item))
    finally:
        await provider.aclose()
    assert caught.value.error_type == "network"
    assert "".join(texts) == "Fake reply"  # the fault strikes two words in


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_refused_connection_is_a_retryable_network_error(name: str) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}" + ("/v1" if name == "openai" else "")
    error = await _failure(name, ProviderSettings(name, base_url, KEY), body_for(name, "m-ok"))  # type: ignore[arg-type]
    assert (error.error_type, error.retryable, error.status_code) == ("network", True, None)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_an_sdk_read_timeout_is_a_retryable_timeout(
    fake: FakeProvider, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = openai_provider if name == "openai" else anthropic_provider
    monkeypatch.setattr(module, "REQUEST_TIMEOUT_S", 0.05)
    error = await _failure(name, settings_for(name, fake), body_for(name, "m-hang"))
    assert (error.error_type, error.retryable) == ("timeout", True)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_flaky_model_fails_then_succeeds(fake: FakeProvider, name: str) -> None:
    provider = open_provider(settings_for(name, fake))
    try:
        with pytest.raises(ProviderError) as caught:
            await collect(provider, body_for(name, "m-flaky-503-1"))
        texts, _ = await collect(provider, body_for(name, "m-flaky-503-1"))
    finally:
        await provider.aclose()
    assert caught.value.error_type == "provider"
    assert texts


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("anthropic", anthropic_body("m-ok", temperature=1.5)),
        ("anthropic", {**anthropic_body("m-ok"), "messages": [{"role": "assistant", "content": "Hi"}]}),
        ("anthropic", {**anthropic_body("m-ok"), "messages": [{"role": "user", "content": " "}]}),
        ("openai", {**openai_body("m-ok"), "messages": LATE_SYSTEM}),
        ("openai", openai_body("o3-mini-ok", temperature=0.5)),
    ],
    ids=["anthropic-temperature", "anthropic-assistant-first", "anthropic-blank", "openai-late-system", "o3-temp"],
)
async def test_requests_the_real_api_refuses_are_validation_errors(
    fake: FakeProvider, name: str, body: dict[str, object]
) -> None:
    error = await _failure(name, settings_for(name, fake), body)
    assert (error.error_type, error.retryable, error.status_code) == ("validation", False, 400)
    assert str(error) == FRIENDLY_MESSAGES["validation"]


@pytest.mark.parametrize(("name", "base_url"), [("openai", "localhost:11434/v1"), ("anthropic", "http://[::1")])
async def test_an_unusable_base_url_is_a_configuration_error(name: str, base_url: str) -> None:
    settings = ProviderSettings(name, base_url, KEY)  # type: ignore[arg-type]
    error = await _failure(name, settings, body_for(name, "m-ok"))
    assert (error.error_type, error.retryable) == ("configuration", False)
