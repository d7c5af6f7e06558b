"""A JSON-RPC server child process over stdio (the sidecar, or a peer server), driven the way Electron does.

Two ways to read its stdout:
- `reader=True`: a thread reads every frame and stamps it with `time.monotonic()` as it arrives; responses are
  waited on by id, notifications are kept in arrival order (and passed to `on_notification`).
- `reader=False`: nothing reads in the background; `roundtrip()` writes one request and reads its answer on the
  calling thread, the tightest loop a client can run (used for ping latency, so the client's own thread hand-off
  is not in the figure).

Synchronisation is always on what the server writes, never on time; `HANG_GUARD_S` only turns a hang into an error.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FROZEN = REPO / "dist" / "chat-sidecar" / "chat-sidecar"
HANG_GUARD_S = 300.0
API_KEY = "sk-bench-0123456789abcdef"
# Where `python -m sidecar` is run from: this checkout, or an exported baseline tree (`python -m bench --baseline`).
SIDECAR_ROOT = REPO


class RpcError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')} {error.get('message')} {error.get('data')}")
        self.error = error


def sidecar_command(frozen: bool = False, lag_probe: bool = False) -> list[str]:
    if frozen:
        return [str(FROZEN)]
    if lag_probe:
        return [sys.executable, "-m", "bench.lagprobe"]
    return [sys.executable, "-m", "sidecar"]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    env.update(extra or {})
    return env


class Decoder:
    """Client-side framing: NDJSON lines or LSP Content-Length frames."""

    def __init__(self, framing: str) -> None:
        self.framing = framing
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        frames: list[bytes] = []
        while True:
            if self.framing == "lsp":
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return frames
                length = 0
                for line in bytes(self.buffer[:end]).split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(self.buffer) < end + 4 + length:
                    return frames
                frames.append(bytes(self.buffer[end + 4 : end + 4 + length]))
                del self.buffer[: end + 4 + length]
            else:
                newline = self.buffer.find(b"\n")
                if newline < 0:
                    return frames
                line = bytes(self.buffer[:newline]).strip()
                del self.buffer[: newline + 1]
                if line:
                    frames.append(line)


def encode(message: Any, framing: str) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body) if framing == "lsp" else body + b"\n"


class Proc:
    def __init__(
        self,
        command: Sequence[str],
        *,
        framing: str = "ndjson",
        reader: bool = True,
        env: dict[str, str] | None = None,
        on_notification: Callable[[float, dict[str, Any]], None] | None = None,
        cwd: Path = REPO,
    ) -> None:
        self.framing = framing
        self.stderr_file = tempfile.TemporaryFile()
        self.spawned_at = time.monotonic()
        self.proc = subprocess.Popen(
            list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_file,
            env=clean_env(env), cwd=cwd, bufsize=0,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        self._decoder = Decoder(framing)
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._responses: dict[Any, tuple[float, dict[str, Any]]] = {}
        self.notifications: list[tuple[float, dict[str, Any]]] = []
        self.keep_notifications = True
        self._on_notification = on_notification
        self._closed = False
        self._write_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        if reader:
            self._reader = threading.Thread(target=self._read, name="bench-reader", daemon=True)
            self._reader.start()

    # --- writing ---
    def write(self, data: bytes) -> float:
        """Write all of `data` to the child's stdin; returns the moment the write completed."""
        with self._write_lock:
            view = memoryview(data)
            while view:
                view = view[os.write(self._in, view) :]
            return time.monotonic()

    def request(self, method: str, params: Any = None, request_id: Any = None) -> tuple[Any, float]:
        request_id = next(self._ids) if request_id is None else request_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        return request_id, self.write(encode(message, self.framing))

    def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.write(encode(message, self.framing))

    # --- reading (reader thread) ---
    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._out, 1 << 20)
            except OSError:
                chunk = b""
            now = time.monotonic()
            if not chunk:
                break
            for frame in self._decoder.feed(chunk):
                self._deliver(now, json.loads(frame))
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _deliver(self, now: float, message: dict[str, Any]) -> None:
        if "method" in message:
            if self._on_notification is not None:
                self._on_notification(now, message)
            if self.keep_notifications:
                with self._cond:
                    self.notifications.append((now, message))
                    self._cond.notify_all()
            return
        with self._cond:
            self._responses[message.get("id")] = (now, message)
            self._cond.notify_all()

    def response(self, request_id: Any, timeout: float = HANG_GUARD_S) -> tuple[float, dict[str, Any]]:
        with self._cond:
            ok = self._cond.wait_for(lambda: request_id in self._responses or self._closed, timeout)
            if request_id not in self._responses:
                state = "closed" if ok else "timed out"
                raise RuntimeError(f"no answer to {request_id!r} ({state}): {self.stderr_tail()}")
            return self._responses.pop(request_id)

    def answered(self, request_id: Any) -> bool:
        """Whether the answer to `request_id` has arrived (and not been taken by `response` yet)."""
        with self._cond:
            return request_id in self._responses

    def call(self, method: str, params: Any = None) -> Any:
        request_id, _ = self.request(method, params)
        _, response = self.response(request_id)
        if "error" in response:
            raise RpcError(response["error"])
        return response["result"]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = HANG_GUARD_S) -> None:
        """Wait until `predicate()` holds; it is re-checked each time a frame arrives."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate() or self._closed, timeout) or not predicate():
                raise RuntimeError(f"waited in vain: {self.stderr_tail()}")

    # --- reading (no reader thread) ---
    def read_frames(self) -> tuple[float, list[bytes]]:
        """Block until at least one whole frame is in; returns the arrival moment and the frames."""
        while True:
            chunk = os.read(self._out, 1 << 20)
            now = time.monotonic()
            if not chunk:
                raise RuntimeError(f"stdout closed: {self.stderr_tail()}")
            frames = self._decoder.feed(chunk)
            if frames:
                return now, frames

    def roundtrip(self, payload: bytes) -> tuple[float, float]:
        """Write one request, read frames until its answer (no notifications expected); (sent, answered)."""
        sent = self.write(payload)
        answered, _ = self.read_frames()
        return sent, answered

    def wait_stderr(self, text: str, timeout: float = HANG_GUARD_S, poll_s: float = 0.01) -> None:
        """Wait until the child has written `text` to stderr (a log line): polled, since stderr goes to a file."""
        end = time.monotonic() + timeout
        while text.encode() not in self._stderr_bytes():
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"no {text!r} on stderr: {self.stderr_tail()}")
            time.sleep(poll_s)

    def _stderr_bytes(self) -> bytes:
        self.stderr_file.seek(0)
        return self.stderr_file.read()

    # --- the process ---
    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stderr_tail(self, lines: int = 5) -> str:
        self.stderr_file.seek(0)
        return " | ".join(self.stderr_file.read().decode("utf-8", "replace").splitlines()[-lines:])

    def close(self, timeout: float = 30) -> int:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if self._reader is not None:
            self._reader.join(10)
        self.stderr_file.close()
        return code

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sidecar(
    data_dir: Path, *, frozen: bool = False, lag_probe: bool = False, reader: bool = True, framing: str = "ndjson",
    env: dict[str, str] | None = None, on_notification: Callable[[float, dict[str, Any]], None] | None = None,
    log_level: str = "info",
) -> Proc:
    command = [*sidecar_command(frozen, lag_probe), "--data-dir", str(data_dir), "--secret-store", "memory",
               "--log-level", log_level]
    env = {**(env or {}), "PYTHONPATH": f"{SIDECAR_ROOT}{os.pathsep}{REPO}"}
    return Proc(command, framing=framing, reader=reader, env=env, on_notification=on_notification, cwd=SIDECAR_ROOT)
