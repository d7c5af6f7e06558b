"""The fake server itself: standalone mode, admin endpoints, and its behaviour tokens."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.fake_provider import Behaviour, FakeProvider, parse_behaviour

FAKE = Path(__file__).parents[1] / "fake_provider.py"


def _post(url: str, body: dict[str, object], headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", Behaviour()),
        ("m-words-5-pace-20", Behaviour(words=5, pace_s=0.02)),
        ("m-err-429-retryafter-3", Behaviour(err=429, retry_after="3")),
        ("m-flaky-503-2-echo", Behaviour(flaky=(503, 2), echo=True)),
        ("m-slow-0.5-gate-4-noauth", Behaviour(slow_s=0.5, gate=4, noauth=True)),
        ("m-words", Behaviour()),
        ("m-words-0-nodone", Behaviour(words=0, nodone=True)),
        ("m-jsonbody-stop-length", Behaviour(jsonbody=True, stop="length")),
        ("m-stop-filter", Behaviour(stop="filter")),
        ("m-stop-tools", Behaviour(stop="tools")),
        ("m-stop-bogus", Behaviour()),
    ],
)
def test_model_names_choose_the_behaviour(model: str, expected: Behaviour) -> None:
    assert parse_behaviour(model) == expected


def test_errors_come_in_each_providers_real_shape(fake: FakeProvider) -> None:
    body = {"model": "m-err-429", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    status, payload = _post(f"{fake.openai_base_url}/chat/completions", body, {"Authorization": "Bearer k"})
    assert status == 429 and set(payload["error"]) == {"message", "type", "param", "code"}  # type: ignore[arg-type]
    status, payload = _post(f"{fake.anthropic_base_url}/v1/messages", body, {"x-api-key": "k"})
    assert status == 400 and payload["type"] == "error"  # no anthropic-version header
    status, payload = _post(
        f"{fake.anthropic_base_url}/v1/messages", body, {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    )
    assert status == 429 and payload["error"] == {"type": "rate_limit_error", "message": "Rate limit reached."}


def test_the_standalone_server_reports_its_port_and_stops_when_stdin_closes() -> None:
    proc = subprocess.Popen([sys.executable, str(FAKE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        port = json.loads(proc.stdout.readline())["port"]
        base = f"http://127.0.0.1:{port}"
        body = {"model": "m-ok", "messages": [{"role": "user", "content": "hi"}]}
        status, payload = _post(f"{base}/v1/chat/completions", body, {"Authorization": "Bearer sk-hidden"})
        assert status == 200 and payload["choices"][0]["message"]["content"] == 'Fake reply to "hi".'  # type: ignore[index]
        with urllib.request.urlopen(f"{base}/_admin/stats", timeout=10) as response:
            stats = json.load(response)
        # Not `open`: the handler thread may still be closing the first request when this one is answered.
        assert (stats["requests"], stats["max_concurrent"]) == (1, 1)
        assert stats["log"][0]["headers"]["authorization"] == "[present]"
        assert "sk-hidden" not in json.dumps(stats)
        _post(f"{base}/_admin/reset", {}, {})
        with urllib.request.urlopen(f"{base}/_admin/stats", timeout=10) as response:
            assert json.load(response)["requests"] == 0
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _stream_lines(url: str, body: dict[str, object], headers: dict[str, str]) -> list[str]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=10) as response:
        return [line for line in response.read().decode().split("\n") if line]


@pytest.mark.parametrize(("model", "final"), [("m-ok", True), ("m-nodone", False)])
def test_an_openai_stream_ends_with_a_finish_reason_and_done_unless_asked_not_to(
    fake: FakeProvider, model: str, final: bool
) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    lines = _stream_lines(f"{fake.openai_base_url}/chat/completions", body, {"Authorization": "Bearer k"})
    chunks = [json.loads(line[6:]) for line in lines if line != "data: [DONE]"]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]]
    assert (finishes, lines[-1] == "data: [DONE]") == ((["stop"], True) if final else ([], False))


@pytest.mark.parametrize(("model", "final"), [("m-ok", True), ("m-nodone", False)])
def test_an_anthropic_stream_ends_with_message_delta_and_message_stop_unless_asked_not_to(
    fake: FakeProvider, model: str, final: bool
) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "stream": True}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    lines = _stream_lines(f"{fake.anthropic_base_url}/v1/messages", body, headers)
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    tail = (
        ["content_block_stop", "message_delta", "message_stop"]
        if final
        else ["content_block_delta", "content_block_stop"]
    )
    assert events[-len(tail) :] == tail


def test_a_jsonbody_model_answers_a_streaming_request_with_one_whole_json_message(fake: FakeProvider) -> None:
    body = {"model": "m-jsonbody", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    status, payload = _post(f"{fake.openai_base_url}/chat/completions", body, {"Authorization": "Bearer k"})
    assert status == 200 and payload["object"] == "chat.completion"
