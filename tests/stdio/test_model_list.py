"""`models:list` and `llmConfigs:test` over stdio, through the real SDK clients against the fake server (CONTRACT §4).

The fake's ``GET /v1/models`` lists catalogue models (exact ids and dated snapshots) and models the catalogue does
not know; a key starting with ``wrong`` is refused with the real 401 body; a base URL under ``/nomodels`` is a
server without a models endpoint. Neither method may ever make a completion call.
"""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.catalogue import lookup, models_for
from sidecar.providers.base import FRIENDLY_MESSAGES
from sidecar.providers.errors import MISSING_KEY_MESSAGE
from tests.fake_provider import ANTHROPIC_MODELS, NO_MODELS_PREFIX, OPENAI_MODELS, FakeProvider
from tests.sidecar_client import Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import closed_port_config, demo_config, fake_config

fake, sidecar = chat_setup.fake, chat_setup.sidecar  # the shared fixtures

NOT_FOUND = -32010
INVALID_PARAMS = -32602
WRONG_KEY = "wrong-key-0123456789abcdef"
LISTED = {"openai": OPENAI_MODELS, "anthropic": ANTHROPIC_MODELS}


def _list(sidecar: Sidecar, config: dict[str, Any]) -> dict[str, Any]:
    return sidecar.call("models:list", {"llmConfigId": config["id"]})


def _test(sidecar: Sidecar, config: dict[str, Any]) -> dict[str, Any]:
    return sidecar.call("llmConfigs:test", {"id": config["id"]})


def _catalogue_alone(provider: str) -> list[dict[str, Any]]:
    return [
        {
            "id": info.id,
            "contextWindow": info.context_window,
            "maxOutputTokens": info.max_output_tokens,
            "pricing": None if info.pricing is None else info.pricing.to_wire(),
            "source": "catalogue",
        }
        for info in models_for(provider)
    ]


def _assert_no_completion_call(fake: FakeProvider) -> None:
    assert [r.path for r in fake.requests if r.method != "GET"] == []


def _model_gets(fake: FakeProvider) -> list[str]:
    return [r.path for r in fake.requests if r.method == "GET"]


def _no_models_config(sidecar: Sidecar, fake: FakeProvider, provider: str) -> dict[str, Any]:
    base_url = f"http://127.0.0.1:{fake.port}{NO_MODELS_PREFIX}" + ("/v1" if provider == "openai" else "")
    params = {"customName": f"no models {provider}", "provider": provider, "baseUrl": base_url,
              "apiKey": chat_setup.API_KEY}  # fmt: skip
    return sidecar.call("llmConfigs:create", params)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_the_providers_models_come_first_merged_with_the_catalogue_and_say_where_they_came_from(
    sidecar: Sidecar, fake: FakeProvider, provider: str
) -> None:
    answer = _list(sidecar, fake_config(sidecar, fake, provider))
    assert answer["providerError"] is None
    models = answer["models"]
    listed = LISTED[provider]
    assert [m["id"] for m in models[: len(listed)]] == list(listed)  # every page, in the provider's order
    for model in models[: len(listed)]:
        info = lookup(provider, model["id"])
        assert model["source"] == ("provider" if info is None else "both"), model
        assert model["contextWindow"] == (None if info is None else info.context_window)
    rest = models[len(listed) :]
    assert all(m["source"] == "catalogue" for m in rest)
    listed_lower = {m.lower() for m in listed}
    assert [m["id"] for m in rest] == [i.id for i in models_for(provider) if i.id.lower() not in listed_lower]
    _assert_no_completion_call(fake)


def test_a_priced_model_has_the_catalogue_price_and_a_model_the_catalogue_does_not_know_has_none(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    by_id = {m["id"]: m for m in _list(sidecar, fake_config(sidecar, fake, "openai"))["models"]}
    snapshot, unknown = by_id["gpt-4o-2024-08-06"], by_id["text-embedding-3-small"]
    assert snapshot == {
        "id": "gpt-4o-2024-08-06",
        "contextWindow": 128000,
        "maxOutputTokens": 16384,
        "pricing": {"inputPerMTok": 2.5, "outputPerMTok": 10.0, "cachedInputPerMTok": 1.25},
        "source": "both",
    }  # a dated snapshot takes its entry's numbers
    assert unknown == {"id": "text-embedding-3-small", "contextWindow": None, "maxOutputTokens": None,
                       "pricing": None, "source": "provider"}  # fmt: skip
    assert by_id["gpt-5"]["source"] == "catalogue" and by_id["gpt-5"]["pricing"]["inputPerMTok"] == 1.25


def test_anthropic_pages_are_followed_as_the_sdk_pages_them(sidecar: Sidecar, fake: FakeProvider) -> None:
    answer = _list(sidecar, fake_config(sidecar, fake, "anthropic"))
    assert len([m for m in answer["models"] if m["source"] != "catalogue"]) == len(ANTHROPIC_MODELS) > 20
    gets = _model_gets(fake)
    assert len(gets) == 2 and "after_id=" not in gets[0] and f"after_id={ANTHROPIC_MODELS[19]}" in gets[1]


def test_the_demo_provider_lists_its_own_models_without_any_network(sidecar: Sidecar, fake: FakeProvider) -> None:
    answer = _list(sidecar, demo_config(sidecar))
    assert answer["providerError"] is None
    assert [(m["id"], m["source"]) for m in answer["models"]] == [
        ("demo", "both"), ("demo-slow", "both"), ("demo-skip", "both")
    ]  # fmt: skip
    assert all(m["pricing"] == {"inputPerMTok": 0.0, "outputPerMTok": 0.0, "cachedInputPerMTok": 0.0}
               for m in answer["models"])  # fmt: skip
    assert fake.requests == []


def _failure_config(sidecar: Sidecar, fake: FakeProvider, case: str, provider: str = "openai") -> dict[str, Any]:
    if case == "no key":
        return fake_config(sidecar, fake, provider, api_key=None)
    if case == "wrong key":
        return fake_config(sidecar, fake, provider, api_key=WRONG_KEY)
    if case == "unreachable":
        return closed_port_config(sidecar)
    return _no_models_config(sidecar, fake, provider)


# case → (errorType, the friendly text, GET /v1/models requests the fake sees)
FAILURES = {
    "no key": ("configuration", MISSING_KEY_MESSAGE, 0),
    "wrong key": ("auth", FRIENDLY_MESSAGES["auth"], 1),
    "unreachable": ("network", FRIENDLY_MESSAGES["network"], 0),
    "no models endpoint": ("configuration", FRIENDLY_MESSAGES["configuration"], 1),
}
FAILURE_CASES = [
    *((case, "openai") for case in FAILURES),
    *((case, "anthropic") for case in ("no key", "wrong key", "no models endpoint")),
]


@pytest.mark.parametrize(("case", "provider"), FAILURE_CASES)
def test_a_provider_that_cannot_list_leaves_the_catalogue_alone_with_the_classified_error(
    sidecar: Sidecar, fake: FakeProvider, case: str, provider: str
) -> None:
    config = _failure_config(sidecar, fake, case, provider)
    error_type, text, gets = FAILURES[case]
    answer = _list(sidecar, config)
    assert answer == {"models": _catalogue_alone(provider), "providerError": {"errorType": error_type, "error": text}}
    assert len(_model_gets(fake)) == gets
    _assert_no_completion_call(fake)
    assert WRONG_KEY.encode() not in bytes(sidecar.stdout_bytes)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_working_key_tests_ok_with_the_number_of_models_listed(
    sidecar: Sidecar, fake: FakeProvider, provider: str
) -> None:
    result = _test(sidecar, fake_config(sidecar, fake, provider))
    assert result["ok"] is True and result["modelCount"] == len(LISTED[provider])
    assert (result["errorType"], result["error"]) == (None, None)
    assert isinstance(result["latencyMs"], int) and result["latencyMs"] >= 0
    _assert_no_completion_call(fake)


def test_the_demo_config_tests_ok_offline(sidecar: Sidecar, fake: FakeProvider) -> None:
    result = _test(sidecar, demo_config(sidecar))
    assert (result["ok"], result["modelCount"], result["error"]) == (True, 3, None)
    assert fake.requests == []


@pytest.mark.parametrize(("case", "provider"), FAILURE_CASES)
def test_a_failing_config_tests_not_ok_with_the_error_type_a_turn_would_get(
    sidecar: Sidecar, fake: FakeProvider, case: str, provider: str
) -> None:
    error_type, text, gets = FAILURES[case]
    result = _test(sidecar, _failure_config(sidecar, fake, case, provider))
    assert (result["ok"], result["modelCount"], result["errorType"], result["error"]) == (False, None, error_type, text)
    assert isinstance(result["latencyMs"], int) and result["latencyMs"] >= 0
    assert len(_model_gets(fake)) == gets
    _assert_no_completion_call(fake)


def test_a_wrong_key_is_caught_before_the_first_message_and_a_turn_agrees(sidecar: Sidecar, fake: FakeProvider) -> None:
    config = fake_config(sidecar, fake, "openai", api_key=WRONG_KEY)
    assert _test(sidecar, config)["errorType"] == "auth"
    room = chat_setup.room_with(sidecar, [("Ada", config, "gpt-4o-ok")])
    [result] = chat_setup.ask(sidecar, room, "Hello")["agentResults"]
    assert (result["status"], result["errorType"]) == ("error", "auth")  # the fake refuses the key on every endpoint


def test_a_config_that_sends_no_key_asks_for_the_models_without_one(sidecar: Sidecar, fake: FakeProvider) -> None:
    params = {"customName": "Ollama-like", "provider": "openai", "baseUrl": fake.openai_base_url,
              "useAuthHeader": False}  # fmt: skip
    answer = _list(sidecar, sidecar.call("llmConfigs:create", params))
    [get] = [r for r in fake.requests if r.method == "GET"]
    assert "authorization" not in get.headers  # not refused locally for a missing key: asked, without one
    assert answer["providerError"] == {"errorType": "auth", "error": FRIENDLY_MESSAGES["auth"]}  # this fake wants one


@pytest.mark.parametrize("method", ["models:list", "llmConfigs:test"])
def test_an_unknown_config_is_not_found_and_a_missing_id_is_invalid(sidecar: Sidecar, method: str) -> None:
    field = "llmConfigId" if method == "models:list" else "id"
    error = sidecar.call_error(method, {field: "0190b5a0-0000-7000-8000-000000000000"})
    assert (error.code, error.kind) == (NOT_FOUND, "not_found")
    error = sidecar.call_error(method, {})
    assert (error.code, error.data["field"]) == (INVALID_PARAMS, field)
