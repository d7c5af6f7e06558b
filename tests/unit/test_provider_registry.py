"""The provider registry: the same names as the wire schema, and each provider's own rules asked through it."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import pytest

from sidecar.providers.base import ProviderError
from sidecar.providers.registry import PROVIDERS, normalize_base_url, provider_names, spec_for
from sidecar.providers.spec import RequestParts, Sampling

OPENRPC: dict[str, Any] = json.loads(files("schema").joinpath("openrpc.json").read_text(encoding="utf-8"))
SCHEMAS: dict[str, Any] = OPENRPC["components"]["schemas"]


def _resolved(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SCHEMAS[node["$ref"].removeprefix("#/components/schemas/")]
    return node


def test_the_registry_knows_exactly_the_providers_the_llm_config_schema_allows() -> None:
    enum = _resolved(SCHEMAS["LlmConfig"]["properties"]["provider"])["enum"]
    assert sorted(provider_names()) == sorted(enum)
    assert all(spec_for(name).name == name for name in enum)


def test_an_unknown_provider_is_a_configuration_error() -> None:
    with pytest.raises(ProviderError) as caught:
        spec_for("mistral")
    assert (caught.value.error_type, caught.value.retryable) == ("configuration", False)


@pytest.mark.parametrize(
    ("name", "sdk_module", "uses_api_key"),
    [("openai", "openai", True), ("anthropic", "anthropic", True), ("demo", None, False)],
)
def test_each_provider_names_its_sdk_and_whether_it_needs_a_key(
    name: str, sdk_module: str | None, uses_api_key: bool
) -> None:
    spec = spec_for(name)
    assert (spec.sdk_module, spec.uses_api_key) == (sdk_module, uses_api_key)


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_no_provider_body_carries_credentials_or_anything_but_the_given_parts(name: str) -> None:
    parts = RequestParts(
        "m", "SYS", [{"role": "user", "content": "Hi"}], Sampling(0.5, None, 10, False), "Ada", "Critic"
    )
    body = spec_for(name).build_body(parts)
    assert body["model"] == "m"
    assert not {"api_key", "apiKey", "headers", "extra_headers", "base_url"} & set(body)


@pytest.mark.parametrize(
    ("name", "given", "saved"),
    [
        ("anthropic", "https://api.anthropic.com/v1", "https://api.anthropic.com"),
        ("anthropic", "https://api.anthropic.com/v1/", "https://api.anthropic.com"),
        ("anthropic", "  https://proxy.example/  ", "https://proxy.example"),
        ("anthropic", "https://proxy.example/anthropic", "https://proxy.example/anthropic"),
        ("openai", "http://localhost:11434/v1", "http://localhost:11434/v1"),
        ("openai", " http://localhost:11434/v1/ ", "http://localhost:11434/v1/"),
        ("demo", "http://x/v1", "http://x/v1"),
        ("a-newer-provider", " http://x/v1 ", "http://x/v1"),
        ("anthropic", "   ", None),
        ("openai", "", None),
        ("openai", None, None),
    ],
)
def test_a_base_url_is_stored_in_the_form_its_providers_sdk_takes(
    name: str, given: str | None, saved: str | None
) -> None:
    assert normalize_base_url(name, given) == saved
