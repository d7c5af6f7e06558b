"""schema/openrpc.json and schema/notifications.json as documents: well formed, consistent, usable by plain tools."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from sidecar import errors

OPENRPC: dict[str, Any] = json.loads(files("schema").joinpath("openrpc.json").read_text(encoding="utf-8"))
NOTIFICATIONS: dict[str, Any] = json.loads(files("schema").joinpath("notifications.json").read_text(encoding="utf-8"))
METHODS = {method["name"]: method for method in OPENRPC["methods"]}
REQUESTS = [name for name, method in METHODS.items() if not method.get("x-notification")]
TS = "2026-11-26T08:00:00.000Z"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    target: Any = document
    for part in ref.removeprefix("#/").split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target


def _plain_validator(uri: str, document: dict[str, Any], pointer: str) -> Draft202012Validator:
    """A stock jsonschema validator, as a client's tooling would build one (no sidecar code involved)."""
    registry: Registry = Registry().with_resource(uri, DRAFT202012.create_resource(document))
    return Draft202012Validator({"$ref": f"{uri}#{pointer}"}, registry=registry)


# --- openrpc.json -----------------------------------------------------------------------------------------------


def test_the_openrpc_document_has_the_top_level_fields_of_openrpc_1_3() -> None:
    assert OPENRPC["openrpc"].startswith("1.3.")
    assert OPENRPC["info"]["title"] == "chat-sidecar"
    assert OPENRPC["info"]["version"] == "1"
    assert set(OPENRPC) == {"openrpc", "info", "methods", "components"}
    assert set(OPENRPC["components"]) == {"schemas", "errors"}


def test_method_names_are_unique() -> None:
    assert len(METHODS) == len(OPENRPC["methods"])


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_is_by_name_with_content_descriptor_params(name: str) -> None:
    method = METHODS[name]
    assert method["paramStructure"] == "by-name"
    assert isinstance(method["summary"], str) and method["summary"]
    param_names = [param["name"] for param in method["params"]]
    assert len(param_names) == len(set(param_names))
    for param in method["params"]:
        assert set(param) <= {"name", "required", "schema", "description"}
        assert isinstance(param["required"], bool)
        Draft202012Validator.check_schema(param["schema"])


@pytest.mark.parametrize("name", REQUESTS)
def test_every_request_has_a_result_descriptor_and_lists_invalid_params(name: str) -> None:
    method = METHODS[name]
    assert method["result"]["name"]
    Draft202012Validator.check_schema(method["result"]["schema"])
    assert {"$ref": "#/components/errors/InvalidParams"} in method["errors"]
    assert {"$ref": "#/components/errors/ShuttingDown"} in method["errors"]


def test_only_the_clients_notifications_have_no_result() -> None:
    notifications = {name for name, method in METHODS.items() if method.get("x-notification")}
    assert notifications == {"exit", "$/cancelRequest"}
    assert all("result" not in METHODS[name] and "errors" not in METHODS[name] for name in notifications)


def test_every_ref_in_the_openrpc_document_resolves() -> None:
    refs = set(_refs(OPENRPC))
    assert refs, "the document is expected to share its row shapes through $ref"
    for ref in refs:
        assert ref.startswith("#/components/"), ref
        _resolve(OPENRPC, ref)


@pytest.mark.parametrize("name", sorted(OPENRPC["components"]["schemas"]))
def test_every_component_schema_is_a_valid_json_schema(name: str) -> None:
    Draft202012Validator.check_schema(OPENRPC["components"]["schemas"][name])


@pytest.mark.parametrize(
    "name", [n for n, s in OPENRPC["components"]["schemas"].items() if "properties" in s and s.get("type") == "object"]
)
def test_every_row_shape_forbids_properties_the_contract_does_not_list(name: str) -> None:
    schema = OPENRPC["components"]["schemas"][name]
    assert schema["additionalProperties"] is False
    assert set(schema.get("required", [])) <= set(schema["properties"])


def test_the_error_components_are_exactly_the_contract_codes() -> None:
    codes = {error["code"] for error in OPENRPC["components"]["errors"].values()}
    assert codes == {-32010, -32011, -32012, -32013, -32014, -32015, -32602, -32800}


@pytest.mark.parametrize(
    ("component", "exception"),
    [
        ("InvalidParams", errors.InvalidParams),
        ("NotFound", errors.NotFound),
        ("Conflict", errors.Conflict),
        ("Validation", errors.RuleViolation),
        ("SecretStorage", errors.SecretStorageError),
        ("Busy", errors.Busy),
        ("ShuttingDown", errors.ShuttingDown),
        ("RequestCancelled", errors.RequestCancelled),
        ("Unavailable", errors.Unavailable),
    ],
)
def test_each_error_component_matches_the_exception_the_sidecar_raises(
    component: str, exception: type[errors.SidecarError]
) -> None:
    declared = OPENRPC["components"]["errors"][component]
    assert declared["code"] == exception.code
    assert declared.get("data", {}).get("kind") == exception.kind


def test_a_stock_json_schema_validator_can_check_a_row_against_the_document() -> None:
    validator = _plain_validator("urn:chat-sidecar:openrpc", OPENRPC, "/components/schemas/ConversationAgent")
    row = {"id": "ca1", "conversationId": "v1", "agentId": "a1", "agentName": "Ada", "enabled": True,
           "displayOrder": 0, "color": "--agent-3", "addedAt": TS}  # fmt: skip
    assert validator.is_valid(row)
    assert not validator.is_valid({**row, "color": "--agent-0"})


# --- notifications.json -----------------------------------------------------------------------------------------

COMMON = {"conversationId": "v1", "conversationAgentId": "ca1", "agentId": "a1", "agentName": "Ada",
          "userMessageId": "m1", "seq": 1}  # fmt: skip
AGENT_UPDATE = _plain_validator("urn:chat-sidecar:notifications", NOTIFICATIONS, "/$defs/AgentUpdate")
ALL_COMPLETE = _plain_validator("urn:chat-sidecar:notifications", NOTIFICATIONS, "/$defs/AllComplete")


def test_the_notifications_document_is_a_valid_draft_2020_12_schema() -> None:
    assert NOTIFICATIONS["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(NOTIFICATIONS)
    for ref in _refs(NOTIFICATIONS):
        _resolve(NOTIFICATIONS, ref)
    assert set(NOTIFICATIONS["x-methods"]) == {"agent:update", "all:complete", "auto:state"}


def test_both_documents_agree_on_the_error_types() -> None:
    assert NOTIFICATIONS["$defs"]["ErrorType"] == OPENRPC["components"]["schemas"]["ErrorType"]


def test_both_documents_agree_on_the_stop_reasons() -> None:
    assert NOTIFICATIONS["$defs"]["StopReason"] == OPENRPC["components"]["schemas"]["StopReason"]
    assert NOTIFICATIONS["$defs"]["StopReason"]["enum"] == ["end", "max_tokens", "content_filter"]


def test_process_user_message_takes_on_busy_and_can_answer_busy() -> None:
    method = METHODS["processUserMessage"]
    [on_busy] = [param for param in method["params"] if param["name"] == "onBusy"]
    assert on_busy["required"] is False and on_busy["schema"]["enum"] == ["interrupt", "reject"]
    assert {"$ref": "#/components/errors/Busy"} in method["errors"]


@pytest.mark.parametrize("name", ["llmConfigs:create", "llmConfigs:update"])
def test_both_llm_config_writes_take_max_concurrency_and_the_row_always_has_it(name: str) -> None:
    [param] = [param for param in METHODS[name]["params"] if param["name"] == "maxConcurrency"]
    assert param["schema"] == {"$ref": "#/components/schemas/MaxConcurrency"}  # so null is refused on update too
    assert "maxConcurrency" in OPENRPC["components"]["schemas"]["LlmConfig"]["required"]


GOOD_UPDATES = [
    {"status": "thinking"},
    {"status": "queued"},
    {"status": "retrying", "attempt": 2, "retryAfterMs": 500},
    {"status": "retrying", "attempt": 3, "retryAfterMs": 30000},
    {"status": "streaming", "delta": "Hello, ", "messageId": "m2"},
    {"status": "complete", "messageId": "m2", "usage": {"firstTokenMs": 120, "totalMs": 900, "costSource": "unpriced"}},
    {"status": "complete", "messageId": "m2",
     "usage": {"inputTokens": 50, "outputTokens": 12, "firstTokenMs": 120, "totalMs": 900, "costMicroUsd": 27,
               "costSource": "estimated"}},
    {"status": "complete", "messageId": "m2",
     "usage": {"inputTokens": 50, "outputTokens": 12, "cachedInputTokens": 40, "reasoningTokens": 8,
               "firstTokenMs": 120, "totalMs": 900, "costMicroUsd": 1234, "costSource": "reported"}},
    {"status": "complete", "messageId": "m2",
     "usage": {"inputTokens": 50, "outputTokens": 12, "tokensEstimated": True, "firstTokenMs": 1, "totalMs": 9,
               "costSource": "unpriced"}},
    {"status": "complete", "messageId": "m2", "usage": {"firstTokenMs": 120, "totalMs": 900, "costSource": "unpriced"},
     "stopReason": "end"},
    {"status": "complete", "messageId": "m2", "usage": {"firstTokenMs": 1, "totalMs": 9, "costSource": "unpriced"},
     "stopReason": "max_tokens"},
    {"status": "complete", "messageId": "m2", "usage": {"firstTokenMs": 1, "totalMs": 9, "costSource": "unpriced"},
     "stopReason": None},
    {"status": "error", "error": "The provider is busy. Try again in a moment.", "errorType": "rate_limit",
     "retryable": True, "messageId": "m3"},
    {"status": "cancelled"},
    {"status": "cancelled", "messageId": "m2"},
]  # fmt: skip


@pytest.mark.parametrize("update", GOOD_UPDATES, ids=lambda u: u["status"])
def test_each_agent_update_status_validates(update: dict[str, Any]) -> None:
    event = {**COMMON, **update}
    assert list(AGENT_UPDATE.iter_errors(event)) == []


BAD_UPDATES = [
    pytest.param({"status": "done"}, id="unknown status"),
    pytest.param({"status": "thinking", "seq": 0}, id="seq starts at 1"),
    pytest.param({"status": "thinking", "delta": "x"}, id="a field of another status"),
    pytest.param({"status": "queued", "attempt": 2}, id="queued carries no fields"),
    pytest.param(
        {"status": "complete", "messageId": "m2", "usage": {"firstTokenMs": 1, "totalMs": 2}, "stopReason": "stop"},
        id="unknown stopReason",
    ),
    pytest.param({"status": "streaming", "delta": "x", "messageId": "m2", "stopReason": "end"}, id="stopReason early"),
    pytest.param({"status": "thinking", "agentName": ""}, id="empty agent name"),
    pytest.param({"status": "retrying", "attempt": 1, "retryAfterMs": 500}, id="attempt 1 is not a retry"),
    pytest.param({"status": "retrying", "attempt": 4, "retryAfterMs": 500}, id="at most 2 retries"),
    pytest.param({"status": "retrying", "attempt": 2}, id="retry without its wait"),
    pytest.param({"status": "streaming", "delta": "", "messageId": "m2"}, id="empty delta"),
    pytest.param({"status": "streaming", "delta": "x"}, id="delta without messageId"),
    pytest.param({"status": "complete", "messageId": "m2"}, id="complete without usage"),
    pytest.param({"status": "complete", "messageId": "m2", "usage": {"firstTokenMs": 1}}, id="usage without totalMs"),
    pytest.param({"status": "complete", "messageId": "m2", "usage": {"firstTokenMs": 1, "totalMs": 2}},
                 id="usage without costSource"),
    pytest.param({"status": "complete", "messageId": "m2",
                  "usage": {"firstTokenMs": 1, "totalMs": 2, "costSource": "estimated"}}, id="a priced cost missing"),
    pytest.param({"status": "complete", "messageId": "m2",
                  "usage": {"firstTokenMs": 1, "totalMs": 2, "costMicroUsd": 5, "costSource": "unpriced"}},
                 id="an unpriced cost"),
    pytest.param({"status": "complete", "messageId": "m2",
                  "usage": {"firstTokenMs": 1, "totalMs": 2, "costMicroUsd": 1.5, "costSource": "estimated"}},
                 id="a fractional cost"),
    pytest.param(
        {"status": "error", "error": "x", "errorType": "fatal", "retryable": False, "messageId": "m3"},
        id="unknown errorType",
    ),
    pytest.param(
        {"status": "error", "error": "x", "errorType": "auth", "messageId": "m3"}, id="error without retryable"
    ),
    pytest.param({"status": "cancelled", "stack": "Traceback ..."}, id="no stack traces"),
    pytest.param(
        {"status": "complete", "messageId": "m2", "usage": {"firstTokenMs": 1, "totalMs": 2}, "apiKey": "sk-x"},
        id="no api keys",
    ),  # fmt: skip
]


@pytest.mark.parametrize("update", BAD_UPDATES)
def test_malformed_agent_updates_are_rejected(update: dict[str, Any]) -> None:
    assert not AGENT_UPDATE.is_valid({**COMMON, **update})


@pytest.mark.parametrize("missing", sorted(COMMON))
def test_an_agent_update_without_a_common_field_is_rejected(missing: str) -> None:
    event = {key: value for key, value in COMMON.items() if key != missing}
    assert not AGENT_UPDATE.is_valid({**event, "status": "thinking"})


def test_all_complete_names_the_turn_and_nothing_else() -> None:
    assert ALL_COMPLETE.is_valid({"conversationId": "v1", "userMessageId": "m1"})
    assert not ALL_COMPLETE.is_valid({"conversationId": "v1"})
    assert not ALL_COMPLETE.is_valid({"conversationId": "v1", "userMessageId": "m1", "results": []})
