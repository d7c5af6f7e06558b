"""JSON-RPC conformance over the real subprocess, in both framings: every bad frame gets its error, every
frame on stdout is valid JSON-RPC, and the process is still alive at the end.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import pytest

from tests.sidecar_client import Sidecar
from tests.stdio.conftest import FRAMINGS


def _error_for(sidecar: Sidecar, body: bytes) -> dict:
    before = len(sidecar.stdout_bytes)
    sidecar.send_raw(body)
    sidecar.wait_for_output(lambda: any(m for m in list(sidecar.messages.queue) if _is_error(m)))
    message = next(m for m in list(sidecar.messages.queue) if _is_error(m))
    sidecar.messages.queue.remove(message)
    assert len(sidecar.stdout_bytes) > before
    return message


def _create_message_frame(request_id: str, conversation_id: str, raw_json_content: str) -> bytes:
    """A frame written by hand, so escapes reach the sidecar exactly as given."""
    params = f'{{"conversationId":"{conversation_id}","role":"user","content":"{raw_json_content}"}}'
    return f'{{"jsonrpc":"2.0","id":"{request_id}","method":"messages:create","params":{params}}}'.encode()


def _ping_frame(request_id: str, raw_json_value: str) -> bytes:
    return f'{{"jsonrpc":"2.0","id":"{request_id}","method":"ping","params":{{"x":{raw_json_value}}}}}'.encode()


def _is_error(message: object) -> bool:
    return isinstance(message, dict) and "error" in message and message.get("id") is None


def test_malformed_json_gets_a_parse_error_with_a_null_id(sidecar: Sidecar) -> None:
    message = _error_for(sidecar, b'{"jsonrpc": "2.0", "id": 1, "method": "ping"')
    assert message["error"]["code"] == -32700
    assert message["id"] is None


def test_invalid_utf8_is_a_parse_error(sidecar: Sidecar) -> None:
    message = _error_for(sidecar, b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"\xff\xfe"}}')
    assert message["error"]["code"] == -32700


@pytest.mark.parametrize(
    "body",
    [
        b'{"jsonrpc": "1.0", "method": "ping"}',
        b'{"method": "ping"}',
        b'{"jsonrpc": "2.0"}',
        b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}',
        b"42",
        b"[]",
        b'"ping"',
    ],
)
def test_invalid_requests_get_minus_32600(sidecar: Sidecar, body: bytes) -> None:
    message = _error_for(sidecar, body)
    assert message["error"]["code"] == -32600


def test_an_unknown_method_gets_minus_32601(sidecar: Sidecar) -> None:
    response = sidecar.response(sidecar.request("nope:nothing", {}))
    assert response["error"]["code"] == -32601


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("roles:create", {"systemPrompt": "x"}, "name"),
        ("roles:create", {"name": 5, "systemPrompt": "x"}, "name"),
        ("roles:create", {"name": "a", "systemPrompt": "x", "colour": "red"}, "colour"),
        ("roles:create", {"name": "a" * 101, "systemPrompt": "x"}, "name"),
        ("personalities:create", {"name": "p", "behaviors": {"humor": 101}}, "behaviors.humor"),
        ("llmConfigs:create", {"customName": "c", "provider": "gemini"}, "provider"),
        ("agents:create", {"name": "a", "llmConfigId": "x", "model": "m", "roleId": "r", "personalityId": "p",
                           "temperature": 2.5}, "temperature"),
        ("messages:list", {"conversationId": "c", "limit": 0}, "limit"),
    ],
)
def test_params_that_break_the_schema_get_minus_32602_naming_the_field(
    sidecar: Sidecar, method: str, params: dict, field: str
) -> None:
    error = sidecar.call_error(method, params)
    assert error.code == -32602
    assert error.data["field"] == field
    assert error.data["reason"]


def test_positional_params_are_rejected_as_invalid_params(sidecar: Sidecar) -> None:
    assert sidecar.call_error("roles:get", ["some-id"]).code == -32602


def test_params_may_be_omitted_for_a_method_without_required_params(sidecar: Sidecar) -> None:
    response = sidecar.response(sidecar.request("roles:list"))
    assert isinstance(response["result"], list) and response["result"]


def test_string_and_integer_ids_come_back_exactly(sidecar: Sidecar) -> None:
    for request_id in ["abc", "", "ünï-🙂", 0, 7, 2**53 - 1, -3]:
        response = sidecar.response(sidecar.request("ping", request_id=request_id))
        assert response["id"] == request_id and type(response["id"]) is type(request_id)
        assert response["result"] == {}


def test_a_notification_never_gets_a_response(sidecar: Sidecar) -> None:
    sidecar.notify("ping")
    sidecar.notify("nope:unknown", {})
    sidecar.notify("roles:create", {"bad": True})
    sidecar.notify("$/cancelRequest", {"id": 12345})
    assert sidecar.call("ping") == {}
    assert [m for m in list(sidecar.messages.queue) if isinstance(m, dict) and m.get("id") is None] == []


def test_a_mixed_batch_gets_one_array_with_one_answer_per_request(sidecar: Sidecar) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "method": "ping"},
        {"jsonrpc": "2.0", "id": 3, "method": "nope:unknown"},
        {"jsonrpc": "2.0", "id": 4, "method": "roles:create", "params": {"name": ""}},
        {"jsonrpc": "1.0", "id": 5, "method": "ping"},
        {"jsonrpc": "2.0", "id": "six", "method": "roles:list"},
    ]
    sidecar.send(batch)
    answers = {json.dumps(a.get("id")): a for a in sidecar.wait_batch()}
    assert set(answers) == {"1", "3", "4", "5", '"six"'}
    assert answers["1"]["result"] == {}
    assert answers["3"]["error"]["code"] == -32601
    assert answers["4"]["error"]["code"] == -32602
    assert answers["5"]["error"]["code"] == -32600
    assert isinstance(answers['"six"']["result"], list)


def test_a_batch_of_only_notifications_gets_no_answer(sidecar: Sidecar) -> None:
    sidecar.send([{"jsonrpc": "2.0", "method": "ping"}, {"jsonrpc": "2.0", "method": "ping"}])
    assert sidecar.call("ping") == {}
    assert sidecar.batches == []


UNICODE_SAMPLES = [
    "emoji 🙂👩🏽‍💻🇯🇵 and a ZWJ family 👨‍👩‍👧",
    "中文、日本語、한국어",
    "עברית مرحبا بالعالم (RTL) \u200f mixed \u202e override",
    "combining é vs é, U+2028 \u2028 and U+2029 \u2029, tab\tnewline\n",
    "astral 𝕳𝖊𝖑𝖑𝖔 𓀀",
]


@pytest.mark.parametrize("text", UNICODE_SAMPLES)
def test_unicode_round_trips_exactly(sidecar: Sidecar, text: str) -> None:
    title = text.split("\n")[0][:100]  # titles are one line, trimmed
    conversation = sidecar.call("conversations:create", {"title": title})
    assert conversation["title"] == title
    created = sidecar.call("messages:create", {"conversationId": conversation["id"], "role": "user", "content": text})
    listed = sidecar.call("messages:list", {"conversationId": conversation["id"]})
    assert created["content"] == text
    assert [m["content"] for m in listed] == [text]
    assert listed[0]["content"].encode("utf-8") == text.encode("utf-8")


def test_a_five_megabyte_message_round_trips(sidecar: Sidecar) -> None:
    conversation = sidecar.call("conversations:create", {})
    text = ("lorem ipsum 漢字 🙂 " * 300_000)[: 3_800_000]
    assert len(text.encode("utf-8")) > 5 * 1024 * 1024
    sidecar.call("messages:create", {"conversationId": conversation["id"], "role": "user", "content": text})
    assert sidecar.call("messages:list", {"conversationId": conversation["id"]})[0]["content"] == text


def test_a_lone_surrogate_is_refused_and_changes_nothing(sidecar: Sidecar) -> None:
    conversation = sidecar.call("conversations:create", {})
    body = _create_message_frame("s", conversation["id"], "bad \\ud800 half")
    sidecar.send_raw(body)
    assert sidecar.response("s")["error"]["code"] == -32600
    assert sidecar.call("messages:list", {"conversationId": conversation["id"]}) == []


def test_an_escaped_surrogate_pair_is_a_valid_character(sidecar: Sidecar) -> None:
    conversation = sidecar.call("conversations:create", {})
    body = _create_message_frame("p", conversation["id"], "smile \\ud83d\\ude42")
    sidecar.send_raw(body)
    assert sidecar.response("p")["result"]["content"] == "smile 🙂"


def test_a_frame_over_16_mib_is_refused_as_too_large_and_the_process_goes_on(sidecar: Sidecar) -> None:
    body = b'{"jsonrpc":"2.0","id":"big","method":"ping","params":{"x":"' + b"a" * (16 * 1024 * 1024) + b'"}}'
    message = _error_for(sidecar, body)
    assert message["error"]["code"] == -32600
    assert message["error"]["data"]["kind"] == "too_large"


def test_nesting_deeper_than_64_levels_is_refused_as_too_deep(sidecar: Sidecar) -> None:
    deep = "[" * 63 + "]" * 63  # params object (level 2) holding 63 more levels: 65 in all
    sidecar.send_raw(_ping_frame("deep", deep))
    response = sidecar.response("deep")
    assert response["error"]["code"] == -32600
    assert response["error"]["data"]["kind"] == "too_deep"


def test_nesting_of_exactly_64_levels_is_parsed(sidecar: Sidecar) -> None:
    deep = "[" * 62 + "]" * 62  # 64 levels in all
    sidecar.send_raw(_ping_frame("ok64", deep))
    error = sidecar.response("ok64")["error"]
    assert error["code"] == -32602 and error["data"]["field"] == "x"  # parsed, then refused by the schema


STRAY_WRITER = """
import os, subprocess, sys
import sidecar.methods.lifecycle as lifecycle
original_ping = lifecycle.ping
async def noisy_ping(services, params):
    print("stray print from a handler")
    os.write(1, b"raw write to fd 1\\n")
    subprocess.run([sys.executable, "-c", "print('a child process writes to its stdout')"], check=True)
    return await original_ping(services, params)
lifecycle.ping = noisy_ping
from sidecar.cli import main
main()
"""


@pytest.mark.parametrize("framing", FRAMINGS)
def test_stray_writes_to_fd_1_from_a_handler_never_reach_stdout(
    spawn_sidecar: Callable[..., Sidecar], framing: str
) -> None:
    sidecar = spawn_sidecar(framing=framing, command=[sys.executable, "-c", STRAY_WRITER])
    assert sidecar.call("ping") == {}
    assert sidecar.call("ping") == {}
    assert sidecar.stop() == 0
    assert sidecar.all_stdout_frames_are_json_rpc()
    assert b"stray" not in sidecar.stdout_bytes and b"child process" not in sidecar.stdout_bytes
    stderr = "\n".join(sidecar.stderr_lines)
    assert "stray print from a handler" in stderr and "a child process writes" in stderr


@pytest.mark.parametrize(
    ("body", "reason_part"),
    [
        (b'{"jsonrpc":"1.0","id":"v","method":"ping"}', "jsonrpc"),
        (b'{"jsonrpc":"2.0","id":"v","method":"ping","extra":1}', "extra"),
        (b'{"jsonrpc":"2.0","id":"v","method":5}', "method"),
        (b'{"id":"v","method":"ping"}', "jsonrpc"),
        (b'{"jsonrpc":"2.0","id":"v"}', "method"),
        (b'{"jsonrpc":"2.0","id":"v","method":"ping","params":"x"}', "params"),
    ],
)
def test_an_invalid_request_whose_id_is_readable_is_answered_with_that_id(
    sidecar: Sidecar, body: bytes, reason_part: str
) -> None:
    sidecar.send_raw(body)
    error = sidecar.response("v")["error"]
    assert error["code"] == -32600
    assert error["data"]["kind"] == "invalid_request" and reason_part in error["data"]["reason"]


def test_null_params_mean_no_params(sidecar: Sidecar) -> None:
    sidecar.send({"jsonrpc": "2.0", "id": "n", "method": "ping", "params": None})
    assert sidecar.response("n")["result"] == {}
