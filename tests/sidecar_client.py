"""Drive a real sidecar subprocess over its stdin/stdout, the way Electron does.

Every result and notification read through `call`/`notifications` is checked against schema/.
Waits are bounded by a generous hang guard; tests synchronise on what the sidecar says, never on time.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sidecar.validation import validate_notification, validate_result

HANG_GUARD_SECONDS = 60.0


class RpcError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')} {error.get('message')} {error.get('data')}")
        self.code: int = error["code"]
        self.message: str = error.get("message", "")
        self.data: Any = error.get("data")

    @property
    def kind(self) -> str | None:
        return self.data.get("kind") if isinstance(self.data, dict) else None


def sidecar_command() -> list[str]:
    """`python -m sidecar`, or the command in CHAT_SIDECAR_COMMAND (a JSON list: the frozen binary, say)."""
    override = os.environ.get("CHAT_SIDECAR_COMMAND")
    return json.loads(override) if override else [sys.executable, "-m", "sidecar"]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class Sidecar:
    """One sidecar process. `framing` is "ndjson" or "lsp" (the client picks; the sidecar detects)."""

    def __init__(
        self,
        data_dir: Path,
        framing: str = "ndjson",
        args: Sequence[str] = ("--secret-store", "memory"),
        env: dict[str, str] | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        self.framing = framing
        self.data_dir = data_dir
        cmd = [*(command or sidecar_command()), "--data-dir", str(data_dir), "--log-level", "debug", *args]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(env)
        )
        self.stdout_bytes = bytearray()
        self.stderr_lines: list[str] = []
        self.messages: queue.Queue[Any] = queue.Queue()
        self._responses: dict[Any, Any] = {}
        self.notifications: list[dict[str, Any]] = []
        self.unmatched: list[Any] = []  # responses whose id was answered twice
        self.batches: list[list[Any]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Condition()
        self._stdout_closed = False
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    # --- sending ---
    def send(self, message: Any) -> None:
        self.send_raw(json.dumps(message, ensure_ascii=False).encode("utf-8"))

    def send_raw(self, body: bytes, framed: bool = True) -> None:
        if framed:
            body = (b"Content-Length: %d\r\n\r\n" % len(body) + body) if self.framing == "lsp" else body + b"\n"
        assert self.proc.stdin is not None
        self.proc.stdin.write(body)
        self.proc.stdin.flush()

    def request(self, method: str, params: Any = None, request_id: Any = None) -> Any:
        request_id = next(self._ids) if request_id is None else request_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return request_id

    def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def call(self, method: str, params: Any = None, timeout: float = HANG_GUARD_SECONDS) -> Any:
        response = self.response(self.request(method, params), timeout)
        if "error" in response:
            raise RpcError(response["error"])
        validate_result(method, response["result"])
        return response["result"]

    def call_error(self, method: str, params: Any = None) -> RpcError:
        response = self.response(self.request(method, params))
        assert "error" in response, f"{method} should have failed but returned {response.get('result')!r}"
        return RpcError(response["error"])

    # --- receiving ---
    def response(self, request_id: Any, timeout: float = HANG_GUARD_SECONDS) -> dict[str, Any]:
        response = self._wait(lambda: self._responses.get(request_id), timeout, f"response to {request_id!r}")
        with self._lock:
            del self._responses[request_id]
        return response

    def has_response(self, request_id: Any) -> bool:
        """Whether the answer to `request_id` has arrived (and not been taken by `response` yet)."""
        with self._lock:
            return request_id in self._responses

    def wait_notification(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = HANG_GUARD_SECONDS
    ) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((n for n in self.notifications if predicate(n)), None)

        return self._wait(find, timeout, "a notification")

    def wait_batch(self, timeout: float = HANG_GUARD_SECONDS) -> list[Any]:
        batch = self._wait(lambda: self.batches[0] if self.batches else None, timeout, "a batch response")
        with self._lock:
            self.batches.remove(batch)
        return batch

    def wait_for_output(self, predicate: Callable[[], bool], timeout: float = HANG_GUARD_SECONDS) -> None:
        self._wait(lambda: True if predicate() else None, timeout, "output")

    def updates(self, conversation_agent_id: str | None = None) -> list[dict[str, Any]]:
        return [
            n["params"]
            for n in self.notifications
            if n["method"] == "agent:update"
            and (conversation_agent_id is None or n["params"]["conversationAgentId"] == conversation_agent_id)
        ]

    def _wait(self, find: Callable[[], Any], timeout: float, what: str) -> Any:
        with self._lock:
            found = self._lock.wait_for(lambda: find() or self._stdout_closed, timeout)
            value = find()
            if value is None:
                state = "stdout closed" if found else "timed out"
                raise AssertionError(f"waiting for {what}: {state}; stderr tail: {self.stderr_lines[-5:]}")
            return value

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        buffer = b""
        while True:
            try:
                chunk = self.proc.stdout.read1(65536)
            except (ValueError, OSError):  # the test closed our end on purpose
                break
            if not chunk:
                break
            self.stdout_bytes += chunk
            buffer += chunk
            buffer = self._take_frames(buffer)
        with self._lock:
            self._stdout_closed = True
            self._lock.notify_all()

    def _take_frames(self, buffer: bytes) -> bytes:
        while True:
            if self.framing == "lsp":
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    return buffer
                header = buffer[:end].decode("ascii")
                assert header.lower().startswith("content-length:"), f"bad header {header!r}"
                length = int(header.split(":", 1)[1])
                if len(buffer) < end + 4 + length:
                    return buffer
                body, buffer = buffer[end + 4 : end + 4 + length], buffer[end + 4 + length :]
            else:
                newline = buffer.find(b"\n")
                if newline < 0:
                    return buffer
                body, buffer = buffer[:newline], buffer[newline + 1 :]
            self._deliver(json.loads(body.decode("utf-8")))  # a non-JSON frame fails the test right here

    def _deliver(self, message: Any) -> None:
        with self._lock:
            self.messages.put(message)
            if isinstance(message, list):
                self.batches.append(message)
            elif "method" in message:
                validate_notification(message["method"], message["params"])
                self.notifications.append(message)
            elif "id" in message:
                if message["id"] in self._responses:
                    self.unmatched.append(message)
                else:
                    self._responses[message["id"]] = message
            self._lock.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line.decode("utf-8", "replace").rstrip("\n"))

    # --- ending ---
    def close_stdin(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass

    def wait_exit(self, timeout: float = HANG_GUARD_SECONDS) -> int:
        code = self.proc.wait(timeout)
        self._release()
        return code

    def stop(self) -> int:
        self.close_stdin()
        try:
            return self.wait_exit(HANG_GUARD_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.wait_exit()
            raise

    def _release(self) -> None:
        """After exit: let the readers reach EOF, then close every pipe."""
        for reader in self._readers:
            reader.join(HANG_GUARD_SECONDS)
        self.close_stdin()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()

    def all_stdout_frames_are_json_rpc(self) -> bool:
        """Every frame written to stdout so far parses and looks like JSON-RPC 2.0."""
        copy = Sidecar.__new__(Sidecar)
        copy.framing = self.framing
        frames: list[Any] = []
        copy._deliver = frames.append  # type: ignore[method-assign]
        rest = copy._take_frames(bytes(self.stdout_bytes))
        return rest == b"" and all(_is_json_rpc(frame) for frame in frames)


def _is_json_rpc(message: Any) -> bool:
    items = message if isinstance(message, list) else [message]
    return bool(items) and all(isinstance(m, dict) and m.get("jsonrpc") == "2.0" for m in items)
