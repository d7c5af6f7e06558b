"""sidecar.validation: params -> InvalidParams(field, reason); results and notifications against schema/."""

from __future__ import annotations

import json
import timeit
from typing import Any

import pytest
from jsonschema import ValidationError

from sidecar.errors import InvalidParams
from sidecar.validation import method_names, validate_notification, validate_params, validate_result

AGENT = {"name": "Ada", "llmConfigId": "c1", "model": "demo", "roleId": "r1", "personalityId": "p1"}
ROLE = {"name": "Critic", "systemPrompt": "Review the idea."}
LLM = {"customName": "Local", "provider": "openai"}
TS = "2026-11-26T08:00:00.000Z"


def _invalid(method: str, params: object) -> dict[str, Any]:
    with pytest.raises(InvalidParams) as caught:
        validate_params(method, params)
    return caught.value.data


# --- params that pass -----------------------------------------------------------------------------------------

ACCEPTED = [
    ("ping", {}),
    ("initialize", {"clientInfo": {"name": "electron", "version": "1.2.3"}, "processId": 4242}),
    ("initialize", {"processId": None}),
    ("$/cancelRequest", {"id": 7}),
    ("$/cancelRequest", {"id": "req-7"}),
    ("llmConfigs:create", {**LLM, "baseUrl": "http://localhost:11434/v1", "useAuthHeader": False, "apiKey": "k"}),
    ("llmConfigs:create", {**LLM, "baseUrl": None}),
    ("llmConfigs:update", {"id": "c1", "apiKey": None}),
    ("llmConfigs:update", {"id": "c1"}),
    ("llmConfigs:create", {**LLM, "maxConcurrency": 1}),
    ("llmConfigs:update", {"id": "c1", "maxConcurrency": 32}),
    ("llmConfigs:setApiKey", {"id": "c1", "apiKey": "k" * 500, "persist": False}),
    ("roles:create", {"name": "n" * 100, "systemPrompt": "s" * 5000, "description": ""}),
    ("personalities:create", {"name": "Wry", "behaviors": {"humor": 100, "focus": 0, "myTrait": 50}}),
    ("personalities:create", {"name": "Plain", "customInstructions": "c" * 500}),
    ("agents:create", {**AGENT, "temperature": 2, "topP": 0, "maxTokens": 200000, "timeoutMs": 1000}),
    ("agents:create", {**AGENT, "temperature": 0.7, "topP": 1.0, "personalityBehaviors": {"humor": -100}}),
    ("agents:update", {"id": "a1", "systemPrompt": None, "temperature": None, "maxTokens": None, "topP": None}),
    ("agents:update", {"id": "a1", "personalityBehaviors": None, "systemPrompt": ""}),
    ("conversations:create", {}),
    ("conversations:create", {"title": "Plans", "chatMode": "round-robin"}),
    ("conversationAgents:add", {"conversationId": "v1", "agentId": "a1", "color": "--agent-8", "displayOrder": 0}),
    ("conversationAgents:update", {"id": "x", "enabled": False}),
    ("messages:list", {"conversationId": "v1", "limit": 1000, "before": "m9"}),
    ("messages:create", {"conversationId": "v1", "role": "system", "content": "a\tb\r\nc 🙂", "included": False}),
    ("messages:updateInclusion", {"id": "m1", "included": True}),
    ("processUserMessage", {"conversationId": "v1", "content": "Hello"}),
    ("processUserMessage", {"conversationId": "v1", "userMessageId": "m1"}),
    ("processUserMessage", {"conversationId": "v1", "content": "Hello", "onBusy": "reject"}),
    ("processUserMessage", {"conversationId": "v1", "userMessageId": "m1", "onBusy": "interrupt"}),
    ("buildAgentContext", {"conversationId": "v1", "agentId": "a1", "userMessageId": "m1"}),
    ("chat:cancel", {"conversationId": "v1"}),
    ("chat:retryAgent", {"conversationId": "v1", "conversationAgentId": "ca1", "userMessageId": "m1"}),
]


@pytest.mark.parametrize(("method", "params"), ACCEPTED)
def test_valid_params_come_back_unchanged(method: str, params: dict[str, Any]) -> None:
    assert validate_params(method, params) == params


@pytest.mark.parametrize("method", ["ping", "shutdown", "exit", "llmConfigs:list", "conversations:create"])
def test_omitted_params_count_as_an_empty_object_when_nothing_is_required(method: str) -> None:
    assert validate_params(method, None) == {}


def test_omitted_params_still_report_the_first_required_field() -> None:
    assert _invalid("messages:list", None) == {"field": "conversationId", "reason": "is required"}


@pytest.mark.parametrize("params", [[], ["v1"], "v1", 3])
def test_params_that_are_not_an_object_are_rejected_as_a_whole(params: object) -> None:
    assert _invalid("ping", params) == {"field": "params", "reason": "params must be an object"}


def test_an_unknown_method_raises_key_error_because_dispatch_checks_names_first() -> None:
    with pytest.raises(KeyError):
        validate_params("nope:nothing", {})


# --- params that fail: (method, params, field, reason) -------------------------------------------------------

REJECTED = [
    # required
    ("roles:create", {"name": "Critic"}, "systemPrompt", "is required"),
    ("agents:create", {k: v for k, v in AGENT.items() if k != "roleId"}, "roleId", "is required"),
    ("messages:updateInclusion", {"id": "m1"}, "included", "is required"),
    ("$/cancelRequest", {}, "id", "is required"),
    ("initialize", {"clientInfo": {"version": "1"}}, "clientInfo.name", "is required"),
    # unknown extra field
    ("ping", {"verbose": True}, "verbose", "is not allowed"),
    ("roles:create", {**ROLE, "createdAt": TS}, "createdAt", "is not allowed"),
    ("initialize", {"clientInfo": {"name": "x", "os": "linux"}}, "clientInfo.os", "is not allowed"),
    (
        "messages:create",
        {"conversationId": "v1", "role": "user", "content": "x", "agentId": "a"},
        "agentId",
        "is not allowed",
    ),
    # type
    ("roles:get", {"id": 5}, "id", "must be a string"),
    ("agents:create", {**AGENT, "maxTokens": 1.0}, "maxTokens", "must be an integer or null"),
    ("agents:create", {**AGENT, "timeoutMs": "60000"}, "timeoutMs", "must be an integer"),
    ("agents:create", {**AGENT, "temperature": float("nan")}, "temperature", "must be a number or null"),
    ("agents:create", {**AGENT, "topP": float("inf")}, "topP", "must be a number or null"),
    (
        "agents:create",
        {**AGENT, "personalityBehaviors": ["humor"]},
        "personalityBehaviors",
        "must be an object or null",
    ),
    ("messages:updateInclusion", {"id": "m1", "included": 1}, "included", "must be a boolean"),
    (
        "conversationAgents:add",
        {"conversationId": "v", "agentId": "a", "enabled": "yes"},
        "enabled",
        "must be a boolean",
    ),
    ("conversationAgents:update", {"id": "x", "displayOrder": True}, "displayOrder", "must be an integer"),
    ("personalities:create", {"name": "p", "behaviors": {"humor": 50.5}}, "behaviors.humor", "must be an integer"),
    ("$/cancelRequest", {"id": None}, "id", "must be a string or an integer"),
    ("initialize", {"clientInfo": "electron"}, "clientInfo", "must be an object"),
    ("llmConfigs:update", {"id": "c1", "apiKey": 5}, "apiKey", "must be a string or null"),
    ("roles:create", {**ROLE, "description": None}, "description", "must be a string"),
    ("llmConfigs:update", {"id": "c1", "maxConcurrency": None}, "maxConcurrency", "must be an integer"),
    ("llmConfigs:create", {**LLM, "maxConcurrency": 4.0}, "maxConcurrency", "must be an integer"),
    # length
    ("roles:create", {**ROLE, "name": "n" * 101}, "name", "must be at most 100 characters"),
    ("roles:create", {**ROLE, "name": ""}, "name", "must not be empty"),
    ("roles:create", {**ROLE, "systemPrompt": "s" * 5001}, "systemPrompt", "must be at most 5000 characters"),
    ("roles:create", {**ROLE, "systemPrompt": ""}, "systemPrompt", "must not be empty"),
    (
        "personalities:create",
        {"name": "p", "customInstructions": "c" * 501},
        "customInstructions",
        "must be at most 500 characters",
    ),
    ("agents:create", {**AGENT, "systemPrompt": "s" * 5001}, "systemPrompt", "must be at most 5000 characters"),
    ("llmConfigs:setApiKey", {"id": "c1", "apiKey": ""}, "apiKey", "must not be empty"),
    ("llmConfigs:setApiKey", {"id": "c1", "apiKey": "k" * 501}, "apiKey", "must be at most 500 characters"),
    ("llmConfigs:update", {"id": "c1", "apiKey": ""}, "apiKey", "must not be empty"),
    ("llmConfigs:create", {**LLM, "customName": "🙂" * 101}, "customName", "must be at most 100 characters"),
    ("messages:create", {"conversationId": "v1", "role": "user", "content": ""}, "content", "must not be empty"),
    ("roles:get", {"id": ""}, "id", "must not be empty"),
    # range
    ("agents:create", {**AGENT, "temperature": 2.01}, "temperature", "must be between 0 and 2"),
    ("agents:create", {**AGENT, "temperature": -0.1}, "temperature", "must be between 0 and 2"),
    ("agents:create", {**AGENT, "topP": 1.5}, "topP", "must be between 0 and 1"),
    ("agents:create", {**AGENT, "maxTokens": 0}, "maxTokens", "must be between 1 and 200000"),
    ("agents:create", {**AGENT, "maxTokens": 200001}, "maxTokens", "must be between 1 and 200000"),
    ("agents:create", {**AGENT, "timeoutMs": 999}, "timeoutMs", "must be between 1000 and 600000"),
    ("agents:create", {**AGENT, "timeoutMs": 600001}, "timeoutMs", "must be between 1000 and 600000"),
    (
        "agents:create",
        {**AGENT, "personalityBehaviors": {"humor": 101}},
        "personalityBehaviors.humor",
        "must be between -100 and 100",
    ),
    (
        "agents:update",
        {"id": "a1", "personalityBehaviors": {"focus": -101}},
        "personalityBehaviors.focus",
        "must be between -100 and 100",
    ),
    (
        "personalities:create",
        {"name": "p", "behaviors": {"humor": 101}},
        "behaviors.humor",
        "must be between 0 and 100",
    ),
    ("personalities:update", {"id": "p1", "behaviors": {"humor": -1}}, "behaviors.humor", "must be between 0 and 100"),
    ("messages:list", {"conversationId": "v1", "limit": 0}, "limit", "must be between 1 and 1000"),
    ("messages:list", {"conversationId": "v1", "limit": 1001}, "limit", "must be between 1 and 1000"),
    ("messages:list", {"conversationId": "v1", "allVersions": "yes"}, "allVersions", "must be a boolean"),
    ("messages:search", {"query": "x" * 10_001}, "query", "must be at most 10000 characters"),
    ("messages:search", {"query": "x", "limit": 0}, "limit", "must be between 1 and 200"),
    ("messages:update", {"id": "m1"}, "content", "is required"),
    ("conversations:export", {"id": "v1", "format": "pdf"}, "format", "must be one of: json, markdown"),
    ("conversations:import", {"content": 5}, "content", "must be a string"),
    (
        "conversationAgents:add",
        {"conversationId": "v", "agentId": "a", "displayOrder": -1},
        "displayOrder",
        "must be between 0 and 2147483647",
    ),
    ("initialize", {"processId": 0}, "processId", "must be at least 1"),
    ("llmConfigs:create", {**LLM, "maxConcurrency": 0}, "maxConcurrency", "must be between 1 and 32"),
    ("llmConfigs:update", {"id": "c1", "maxConcurrency": 33}, "maxConcurrency", "must be between 1 and 32"),
    # enum
    ("llmConfigs:create", {**LLM, "provider": "gemini"}, "provider", "must be one of: openai, anthropic, demo"),
    ("conversations:create", {"chatMode": "parallel"}, "chatMode", "must be one of: manual, round-robin, auto"),
    (
        "processUserMessage",
        {"conversationId": "v1", "content": "hi", "onBusy": "queue"},
        "onBusy",
        "must be one of: interrupt, reject",
    ),
    (
        "messages:create",
        {"conversationId": "v1", "role": "agent", "content": "x"},
        "role",
        "must be one of: user, system",
    ),
    # pattern
    (
        "conversationAgents:add",
        {"conversationId": "v", "agentId": "a", "color": "--agent-9"},
        "color",
        "must be one of --agent-1 to --agent-8",
    ),
    (
        "conversationAgents:update",
        {"id": "x", "color": "--agent-1\n"},
        "color",
        "must be one of --agent-1 to --agent-8",
    ),
    ("conversationAgents:update", {"id": "x", "color": "red"}, "color", "must be one of --agent-1 to --agent-8"),
    ("llmConfigs:create", {**LLM, "baseUrl": "localhost:11434"}, "baseUrl", "must be an http:// or https:// URL"),
    ("llmConfigs:update", {"id": "c1", "baseUrl": ""}, "baseUrl", "must be an http:// or https:// URL"),
    (
        "personalities:create",
        {"name": "p", "behaviors": {"9lives": 1}},
        "behaviors.9lives",
        "is not a valid trait name (a letter, then letters, digits or _, at most 50 characters)",
    ),
    (
        "messages:create",
        {"conversationId": "v1", "role": "user", "content": "bell\x07"},
        "content",
        "must not contain control characters (other than newline, carriage return and tab) or unpaired surrogates",
    ),
    (
        "processUserMessage",
        {"conversationId": "v1", "content": "c1 \x85"},
        "content",
        "must not contain control characters (other than newline, carriage return and tab) or unpaired surrogates",
    ),
    (
        "processUserMessage",
        {"conversationId": "v1", "content": "half \ud83d"},
        "content",
        "must not contain control characters (other than newline, carriage return and tab) or unpaired surrogates",
    ),
    # cross-field rules
    ("processUserMessage", {"conversationId": "v1"}, "userMessageId", "is required (or give content instead)"),
    (
        "processUserMessage",
        {"conversationId": "v1", "userMessageId": "m1", "content": "hi"},
        "content",
        "is not allowed together with userMessageId",
    ),
]


@pytest.mark.parametrize(("method", "params", "field", "reason"), REJECTED)
def test_invalid_params_name_the_wire_field_and_a_short_reason(
    method: str, params: dict[str, Any], field: str, reason: str
) -> None:
    assert _invalid(method, params) == {"field": field, "reason": reason}


def test_invalid_params_carry_the_json_rpc_code() -> None:
    with pytest.raises(InvalidParams) as caught:
        validate_params("ping", {"x": 1})
    assert caught.value.code == -32602


def test_message_content_counts_code_points_not_bytes_up_to_the_limit() -> None:
    assert validate_params("messages:create", {"conversationId": "v", "role": "user", "content": "🙂"})


def test_message_content_over_8_mib_of_utf8_is_rejected_even_when_short_in_code_points() -> None:
    content = "é" * (4 * 2**20 + 1)  # 2 bytes each: 8 MiB + 2 bytes, only ~4 M code points
    assert _invalid("processUserMessage", {"conversationId": "v", "content": content}) == {
        "field": "content",
        "reason": "must be at most 8 MiB of UTF-8",
    }


def test_message_content_of_exactly_8_mib_of_utf8_is_accepted() -> None:
    content = "é" * (4 * 2**20)
    assert validate_params("processUserMessage", {"conversationId": "v", "content": content})["content"] is content


def test_a_ping_is_validated_in_microseconds() -> None:
    validate_params("ping", {})  # build the validators first
    seconds = min(timeit.repeat(lambda: validate_params("ping", {}), number=1000, repeat=3)) / 1000
    assert seconds < 200e-6  # a hang guard against recompiling per call, not a benchmark


def test_method_names_list_every_contract_method_including_client_notifications() -> None:
    names = method_names()
    crud = {
        f"{ns}:{action}"
        for ns in ("llmConfigs", "roles", "personalities", "agents", "conversations")
        for action in ("list", "get", "create", "update", "delete")
    }
    expected = crud | {
        "initialize", "ping", "shutdown", "exit", "$/cancelRequest", "llmConfigs:setApiKey",
        "conversationAgents:list", "conversationAgents:add", "conversationAgents:update", "conversationAgents:remove",
        "messages:list", "messages:create", "messages:updateInclusion", "messages:delete",
        "messages:update", "messages:versions", "messages:selectVersion", "messages:search",
        "conversations:export", "conversations:import", "conversations:usage", "conversations:contextUsage",
        "llmConfigs:test", "models:list",
        "processUserMessage", "buildAgentContext", "chat:cancel", "chat:retryAgent", "chat:startAuto",
        "chat:regenerate",
    }  # fmt: skip
    assert names == expected


# --- results ----------------------------------------------------------------------------------------------------

MESSAGE = {
    "id": "m1", "conversationId": "v1", "conversationAgentId": None, "role": "user", "content": "Hi",
    "included": True, "status": "complete", "replyToId": None, "createdAt": TS, "stopReason": None,
    "version": None, "versionCount": None, "active": True, "editedAt": None,
}  # fmt: skip
REPLY = {**MESSAGE, "id": "m2", "role": "agent", "conversationAgentId": "ca1", "replyToId": "m1", "version": 1,
         "versionCount": 1}  # fmt: skip
AGENT_ROW = {
    **AGENT, "id": "a1", "systemPrompt": None, "personalityBehaviors": None, "temperature": None, "maxTokens": None,
    "topP": None, "timeoutMs": 60000, "createdAt": TS, "updatedAt": TS,
}  # fmt: skip
AGENT_RESULT = {"conversationAgentId": "ca1", "agentId": "a1", "agentName": "Ada", "status": "complete",
                "messageId": "m2", "durationMs": 1200, "firstTokenMs": 300,
                "usage": {"inputTokens": 10, "outputTokens": 20, "firstTokenMs": 300, "totalMs": 1200}}  # fmt: skip

GOOD_RESULTS = [
    ("ping", {}),
    ("shutdown", None),
    ("roles:delete", None),
    ("conversationAgents:remove", None),
    ("initialize", {"serverInfo": {"name": "chat-sidecar", "version": "0.1.0"}, "protocolVersion": "1",
                    "capabilities": {"lspFraming": True}, "dataDir": "/tmp/d", "secretStorage": "memory"}),
    ("llmConfigs:list", []),
    ("llmConfigs:setApiKey", {"id": "c1", "customName": "Demo (offline)", "provider": "demo", "baseUrl": None,
                              "useAuthHeader": True, "maxConcurrency": 8, "hasApiKey": True, "createdAt": TS,
                              "updatedAt": TS}),
    ("roles:list", [{"id": "r1", "name": "Critic", "description": "", "systemPrompt": "Review."}]),
    ("personalities:get", {"id": "p1", "name": "Wry", "behaviors": {"humor": 80}, "customInstructions": ""}),
    ("agents:create", AGENT_ROW),
    ("agents:update", {k: v for k, v in AGENT_ROW.items() if v is not None}),
    ("conversations:list", [{"id": "v1", "title": "New Conversation", "chatMode": "manual", "createdAt": TS,
                             "autoSettings": {"maxMessages": 12, "delayMs": 0, "style": "sequential"},
                             "updatedAt": TS}]),
    ("conversationAgents:add", {"id": "ca1", "conversationId": "v1", "agentId": "a1", "agentName": "Ada",
                                "enabled": True, "displayOrder": 0, "color": "--agent-1", "addedAt": TS}),
    ("messages:list", [MESSAGE, {**REPLY, "usage": {"outputTokens": 3}, "stopReason": "end"}]),
    ("messages:list", [{**REPLY, "stopReason": "max_tokens"}, {**REPLY, "stopReason": "content_filter"},
                       {**REPLY, "status": "streaming"}, {**REPLY, "status": "cancelled"}]),
    ("messages:updateInclusion", {**MESSAGE, "included": False, "usage": None}),
    ("messages:versions", [{**REPLY, "versionCount": 2, "active": False}, {**REPLY, "version": 2, "versionCount": 2}]),
    ("messages:update", {**MESSAGE, "editedAt": TS}),
    ("messages:search", [{"message": REPLY, "conversationTitle": "Plans", "snippet": "…a hit…",
                          "highlights": [{"start": 1, "end": 4}]}]),
    ("conversations:export", {"filename": "Plans.md", "mimeType": "text/markdown", "content": "# Plans\n"}),
    ("processUserMessage", {"userMessageId": "m1", "totalAgents": 1, "successfulAgents": 1, "failedAgents": 0,
                            "cancelledAgents": 0, "totalDurationMs": 1250, "agentResults": [AGENT_RESULT]}),
    ("chat:retryAgent", {**AGENT_RESULT, "status": "error", "messageId": "m3", "error": "The key was refused.",
                         "errorType": "auth", "retryable": False}),
    ("chat:retryAgent", {**AGENT_RESULT, "status": "cancelled", "messageId": None}),
    ("chat:cancel", {"cancelled": 0}),
    ("buildAgentContext", {"systemPrompt": "You are Ada.", "messages": [{"role": "user", "content": "Hi"}],
                           "provider": "openai", "model": "gpt-4o", "request": {"model": "gpt-4o"},
                           "budget": {"contextWindow": 128000, "reservedOutput": 1024, "systemTokens": 40,
                                      "historyTokens": 5, "keptCount": 1, "droppedCount": 0,
                                      "droppedMessageIds": [], "estimated": True}}),
    ("conversations:contextUsage", [{"conversationAgentId": "ca1", "agentName": "Ada", "model": "gpt-4o",
                                     "contextWindow": 128000, "tokens": 45, "ratio": 0.0004, "estimated": True}]),
]  # fmt: skip


@pytest.mark.parametrize(("method", "result"), GOOD_RESULTS)
def test_results_of_the_contract_shape_pass(method: str, result: object) -> None:
    validate_result(method, result)


BAD_RESULTS = [
    ("ping", {"pong": True}),
    ("ping", None),
    ("roles:delete", {}),
    ("roles:list", {"items": []}),
    ("llmConfigs:get", {"id": "c1", "customName": "x", "provider": "demo", "useAuthHeader": True,
                        "maxConcurrency": 8, "hasApiKey": False, "createdAt": TS, "updatedAt": TS,
                        "apiKey": "sk-secret"}),
    ("llmConfigs:get", {"id": "c1", "customName": "x", "provider": "demo", "useAuthHeader": True,
                        "hasApiKey": False, "createdAt": TS, "updatedAt": TS}),
    ("llmConfigs:get", {"id": "c1", "customName": "x", "provider": "demo", "useAuthHeader": True,
                        "maxConcurrency": 33, "hasApiKey": False, "createdAt": TS, "updatedAt": TS}),
    ("messages:list", [{k: v for k, v in MESSAGE.items() if k != "stopReason"}]),
    ("messages:list", [{**MESSAGE, "stopReason": "end"}]),
    ("messages:list", [{**REPLY, "stopReason": "length"}]),
    ("conversations:get", {"id": "v1", "title": "t", "chatMode": "manual", "createdAt": "2026-11-26T08:00:00Z",
                           "autoSettings": {"maxMessages": 12, "delayMs": 0, "style": "sequential"},
                           "updatedAt": TS}),
    ("messages:list", [{**MESSAGE, "role": "agent"}]),
    ("messages:list", [{**MESSAGE, "conversationAgentId": "ca1"}]),
    ("messages:list", [{**MESSAGE, "version": 1, "versionCount": 1}]),
    ("messages:list", [{**MESSAGE, "active": False}]),
    ("messages:list", [{**REPLY, "version": None}]),
    ("messages:list", [{k: v for k, v in REPLY.items() if k != "editedAt"}]),
    ("messages:search", [{"message": REPLY, "conversationTitle": "Plans", "snippet": "<mark>hit</mark>"}]),
    ("agents:get", {**AGENT_ROW, "durationMs": 1.5}),
    ("chat:retryAgent", {**AGENT_RESULT, "status": "error"}),
    ("chat:retryAgent", {**AGENT_RESULT, "durationMs": 12.5}),
    ("chat:cancel", {"cancelled": -1}),
    ("initialize", {"serverInfo": {"name": "s", "version": "1"}, "protocolVersion": 1, "capabilities": {},
                    "dataDir": "/d", "secretStorage": "memory"}),
    ("buildAgentContext", {"systemPrompt": "", "messages": [{"role": "system", "content": "x"}],
                           "provider": "openai", "model": "m", "request": {}}),
]  # fmt: skip


@pytest.mark.parametrize(("method", "result"), BAD_RESULTS)
def test_results_off_the_contract_shape_raise(method: str, result: object) -> None:
    with pytest.raises(ValidationError):
        validate_result(method, result)


def test_client_notifications_have_no_result_to_validate() -> None:
    with pytest.raises(KeyError):
        validate_result("exit", None)


# --- notifications ----------------------------------------------------------------------------------------------

COMMON = {"conversationId": "v1", "conversationAgentId": "ca1", "agentId": "a1", "agentName": "Ada",
          "userMessageId": "m1"}  # fmt: skip


def test_a_whole_agent_update_sequence_validates() -> None:
    events = [
        {"status": "thinking"},
        {"status": "queued"},
        {"status": "retrying", "attempt": 2, "retryAfterMs": 500},
        {"status": "streaming", "delta": "Hel", "messageId": "m2"},
        {"status": "complete", "messageId": "m2", "usage": {"firstTokenMs": 40, "totalMs": 90, "outputTokens": 2,
                                                          "costSource": "unpriced"}, "stopReason": "end"},
    ]
    for seq, event in enumerate(events, start=1):
        validate_notification("agent:update", {**COMMON, **event, "seq": seq})
    validate_notification("all:complete", {"conversationId": "v1", "userMessageId": "m1"})


def test_notification_params_round_trip_through_json() -> None:
    event = {**COMMON, "seq": 1, "status": "cancelled"}
    validate_notification("agent:update", json.loads(json.dumps(event)))


def test_an_unknown_notification_raises_key_error() -> None:
    with pytest.raises(KeyError):
        validate_notification("agent:progress", {})
