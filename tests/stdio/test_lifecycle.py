"""How the process ends: stdin EOF, SIGTERM, shutdown/exit, parent death and a vanished client.

Each ends with exit code 0 within the contract's 2 s and leaves the database consistent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import integrity_check
from tests.sidecar_client import Sidecar

EXIT_WITHIN_SECONDS = 2.0  # CONTRACT §2


def _exit_code_within_contract(sidecar: Sidecar, since: float) -> int:
    code = sidecar.wait_exit(timeout=30)
    assert time.monotonic() - since <= EXIT_WITHIN_SECONDS, "the contract gives the process 2 s to exit"
    return code


def _start_slow_turn(sidecar: Sidecar) -> tuple[str, str]:
    """A conversation with one demo-slow agent, its turn started but not finished."""
    config = next(c for c in sidecar.call("llmConfigs:list") if c["provider"] == "demo")
    role = sidecar.call("roles:list")[0]
    personality = sidecar.call("personalities:list")[0]
    agent = sidecar.call("agents:create", {"name": "Slowpoke", "llmConfigId": config["id"], "model": "demo-slow",
                                           "roleId": role["id"], "personalityId": personality["id"]})
    conversation = sidecar.call("conversations:create", {"title": "slow"})
    sidecar.call("conversationAgents:add", {"conversationId": conversation["id"], "agentId": agent["id"]})
    request_id = sidecar.request("processUserMessage", {"conversationId": conversation["id"], "content": "Hello"})
    sidecar.wait_notification(lambda n: n["method"] == "agent:update" and n["params"]["status"] == "streaming")
    return conversation["id"], request_id


@pytest.mark.parametrize("framing", ["ndjson", "lsp"])
def test_stdin_eof_with_nothing_in_flight_exits_0(spawn_sidecar: Callable[..., Sidecar], framing: str) -> None:
    sidecar = spawn_sidecar(framing=framing)
    assert sidecar.call("ping") == {}
    assert sidecar.call("conversations:list") == []  # the database file exists once this is answered
    started = time.monotonic()
    sidecar.close_stdin()
    assert _exit_code_within_contract(sidecar, started) == 0
    assert integrity_check(sidecar.data_dir) == "ok"


def test_stdin_eof_still_answers_every_request_already_received(tmp_path: Path) -> None:
    """`cat session.jsonl | chat-sidecar` gets every answer, a whole turn included."""
    setup = Sidecar(tmp_path / "data")
    config = next(c for c in setup.call("llmConfigs:list") if c["provider"] == "demo")
    role, personality = setup.call("roles:list")[0], setup.call("personalities:list")[0]
    agent = setup.call("agents:create", {"name": "Echo", "llmConfigId": config["id"], "model": "demo",
                                         "roleId": role["id"], "personalityId": personality["id"]})
    conversation = setup.call("conversations:create", {})
    setup.call("conversationAgents:add", {"conversationId": conversation["id"], "agentId": agent["id"]})
    assert setup.stop() == 0

    session = b"".join(
        line + b"\n"
        for line in [
            b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
            b'{"jsonrpc":"2.0","id":2,"method":"processUserMessage","params":{"conversationId":"%s",'
            b'"content":"Tell me something"}}' % conversation["id"].encode(),
            b'{"jsonrpc":"2.0","id":3,"method":"messages:list","params":{"conversationId":"%s"}}'
            % conversation["id"].encode(),
        ]
    )
    done = subprocess.run(
        [sys.executable, "-m", "sidecar", "--data-dir", str(tmp_path / "data"), "--secret-store", "memory"],
        input=session, capture_output=True, timeout=60,
    )
    assert done.returncode == 0
    frames = [json.loads(line) for line in done.stdout.splitlines()]
    answered = {frame["id"] for frame in frames if "id" in frame}
    assert answered == {1, 2, 3}
    turn = next(frame for frame in frames if frame.get("id") == 2)["result"]
    assert turn["successfulAgents"] == 1
    methods = [frame.get("method") for frame in frames]
    assert "all:complete" in methods


@pytest.mark.parametrize("source", ["file", "devnull"])
def test_a_regular_file_or_dev_null_as_stdin_is_read_to_its_end(tmp_path: Path, source: str) -> None:
    """`chat-sidecar < session.jsonl`: the event loop cannot poll a regular file, so a thread reads it."""
    session = tmp_path / "session.jsonl"
    session.write_bytes(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n{"jsonrpc":"2.0","id":2,"method":"roles:list"}\n')
    with open(session if source == "file" else os.devnull, "rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "sidecar", "--data-dir", str(tmp_path / "data"), "--secret-store", "memory"],
            stdin=stdin, capture_output=True, timeout=60,
        )
    assert done.returncode == 0
    answered = {json.loads(line)["id"] for line in done.stdout.splitlines()}
    assert answered == ({1, 2} if source == "file" else set())


def test_sigterm_mid_turn_cancels_the_agent_keeps_its_text_and_exits_0(spawn_sidecar: Callable[..., Sidecar]) -> None:
    sidecar = spawn_sidecar()
    conversation_id, _ = _start_slow_turn(sidecar)
    started = time.monotonic()
    sidecar.proc.send_signal(signal.SIGTERM)
    assert _exit_code_within_contract(sidecar, started) == 0
    assert integrity_check(sidecar.data_dir) == "ok"
    terminal = [u["status"] for u in sidecar.updates() if u["status"] in ("complete", "error", "cancelled")]
    assert terminal == ["cancelled"]
    after = Sidecar(sidecar.data_dir)
    rows = after.call("messages:list", {"conversationId": conversation_id})
    assert after.stop() == 0
    reply = next(row for row in rows if row["role"] == "agent")
    assert reply["status"] == "cancelled" and reply["content"]


def test_shutdown_answers_then_refuses_new_work_and_exit_ends_with_0(spawn_sidecar: Callable[..., Sidecar]) -> None:
    sidecar = spawn_sidecar()
    conversation_id, turn_id = _start_slow_turn(sidecar)
    assert sidecar.call("shutdown") is None
    turn = sidecar.response(turn_id)["result"]  # the turn in flight still answers, its agent cancelled
    assert turn["cancelledAgents"] == 1
    error = sidecar.call_error("ping")
    assert (error.code, error.kind) == (-32014, "shutting_down")
    started = time.monotonic()
    sidecar.notify("exit")
    assert _exit_code_within_contract(sidecar, started) == 0
    assert integrity_check(sidecar.data_dir) == "ok"


def test_the_sidecar_exits_when_the_process_named_in_initialize_dies(spawn_sidecar: Callable[..., Sidecar]) -> None:
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    sidecar = spawn_sidecar()
    result = sidecar.call("initialize", {"clientInfo": {"name": "test"}, "processId": parent.pid})
    assert result["protocolVersion"] == "1"
    assert sidecar.call("conversations:list") == []  # the database file exists once this is answered
    parent.kill()
    parent.wait()
    started = time.monotonic()
    assert _exit_code_within_contract(sidecar, started) == 0
    assert integrity_check(sidecar.data_dir) == "ok"


def test_a_vanished_client_cancels_work_and_exits_0(spawn_sidecar: Callable[..., Sidecar]) -> None:
    sidecar = spawn_sidecar()
    conversation_id, _ = _start_slow_turn(sidecar)
    assert sidecar.proc.stdout is not None
    sidecar.proc.stdout.close()  # the next write of a streamed delta hits a broken pipe
    assert sidecar.wait_exit(timeout=30) == 0
    assert integrity_check(sidecar.data_dir) == "ok"
    after = Sidecar(sidecar.data_dir)
    rows = after.call("messages:list", {"conversationId": conversation_id})
    assert after.stop() == 0
    assert {row["status"] for row in rows if row["role"] == "agent"} <= {"cancelled"}
