"""Which credential headers reach the server for each useAuthHeader setting, and that SDK env vars never do."""

from __future__ import annotations

import pytest

from sidecar.providers.base import ProviderError, ProviderSettings
from sidecar.providers.errors import MISSING_KEY_MESSAGE
from sidecar.providers.factory import open_provider
from tests.fake_provider import FakeProvider
from tests.providers.helpers import KEY, anthropic_settings, body_for, collect, openai_settings, settings_for

pytestmark = pytest.mark.anyio


async def _run(settings: ProviderSettings, body: dict[str, object]) -> list[str]:
    provider = open_provider(settings)
    try:
        texts, _ = await collect(provider, body)
    finally:
        await provider.aclose()
    return texts


async def test_openai_sends_the_key_as_a_bearer_token(fake: FakeProvider) -> None:
    await _run(openai_settings(fake), body_for("openai", "m-ok"))
    (request,) = fake.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in request.headers


@pytest.mark.parametrize("key", [None, KEY])
async def test_openai_without_the_auth_header_sends_no_credential_at_all(fake: FakeProvider, key: str | None) -> None:
    # The way Ollama and other keyless OpenAI-compatible servers are reached.
    await _run(openai_settings(fake, key=key, use_auth_header=False), body_for("openai", "m-noauth-ok"))
    (request,) = fake.requests
    assert "authorization" not in request.headers and "x-api-key" not in request.headers


async def test_anthropic_with_the_auth_header_sends_a_bearer_token(fake: FakeProvider) -> None:
    await _run(anthropic_settings(fake), body_for("anthropic", "m-ok"))
    (request,) = fake.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in request.headers
    assert request.headers["anthropic-version"]


async def test_anthropic_without_the_auth_header_sends_x_api_key(fake: FakeProvider) -> None:
    await _run(anthropic_settings(fake, use_auth_header=False), body_for("anthropic", "m-ok"))
    (request,) = fake.requests
    assert request.headers["x-api-key"] == KEY
    assert "authorization" not in request.headers


@pytest.mark.parametrize(("name", "use_auth_header"), [("openai", True), ("anthropic", True), ("anthropic", False)])
@pytest.mark.parametrize("key", [None, ""])
async def test_a_missing_key_is_a_configuration_error_before_any_request(
    fake: FakeProvider, name: str, use_auth_header: bool, key: str | None
) -> None:
    provider = open_provider(settings_for(name, fake, key=key, use_auth_header=use_auth_header))
    try:
        with pytest.raises(ProviderError) as caught:
            await collect(provider, body_for(name, "m-ok"))
    finally:
        await provider.aclose()
    assert (caught.value.error_type, caught.value.retryable) == ("configuration", False)
    assert str(caught.value) == MISSING_KEY_MESSAGE
    assert fake.requests == []


@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_a_rejected_key_never_appears_in_the_error(fake: FakeProvider, name: str) -> None:
    provider = open_provider(settings_for(name, fake))
    try:
        with pytest.raises(ProviderError) as caught:
            await collect(provider, body_for(name, "m-err-401"))
    finally:
        await provider.aclose()
    assert caught.value.error_type == "auth"
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)
    assert KEY not in repr(settings_for(name, fake))


async def test_openai_environment_variables_are_ignored(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-env")
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "Authorization: Bearer sk-env-header\nX-Proxy-Token: secret")
    await _run(openai_settings(fake), body_for("openai", "m-ok"))
    await _run(openai_settings(fake, use_auth_header=False), body_for("openai", "m-noauth-ok"))
    with_key, without_key = fake.requests
    assert with_key.headers["authorization"] == f"Bearer {KEY}"
    for request in (with_key, without_key):
        assert not {"openai-organization", "openai-project", "x-proxy-token"} & set(request.headers)
    assert "authorization" not in without_key.headers


async def test_anthropic_environment_variables_and_profiles_are_ignored(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "sk-ant-env-token")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ANTHROPIC_CUSTOM_HEADERS", "x-api-key: sk-ant-env-header\nX-Proxy-Token: secret")
    monkeypatch.setenv("ANTHROPIC_PROFILE", "missing-profile")
    monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path))
    await _run(anthropic_settings(fake), body_for("anthropic", "m-ok"))
    await _run(anthropic_settings(fake, use_auth_header=False), body_for("anthropic", "m-ok"))
    bearer, api_key = fake.requests
    assert bearer.headers["authorization"] == f"Bearer {KEY}" and "x-api-key" not in bearer.headers
    assert api_key.headers["x-api-key"] == KEY and "authorization" not in api_key.headers
    assert "x-proxy-token" not in bearer.headers and "x-proxy-token" not in api_key.headers


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
async def test_an_anthropic_base_url_may_end_in_a_slash_or_v1(fake: FakeProvider, suffix: str) -> None:
    await _run(anthropic_settings(fake, base_url=fake.anthropic_base_url + suffix), body_for("anthropic", "m-ok"))
    assert [r.path for r in fake.requests] == ["/v1/messages"]
