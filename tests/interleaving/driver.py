"""A sidecar client for interleaving tests: every frame kept in arrival order, several frames in one write, a stdout
reader that can stop and resume, signals, and exits measured against the contract's 2 s.

Built on tests/sidecar_client.py's `Sidecar` (so `call`, `request`, `wait_notification` work as usual). A frame
that breaks the schema is recorded in `schema_errors` instead of killing the reader thread, so a test fails with
the reason rather than after a hang.
"""

from __future__ import annotations

import fcntl
import json
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from termios import FIONREAD
from typing import Any

from sidecar.validation import validate_notification
from storage.db import DB_FILE_NAME
from tests.sidecar_client import HANG_GUARD_SECONDS, Sidecar

EXIT_WITHIN_SECONDS = 2.0  # CONTRACT §2: the only timing bound these tests assert
F_GETPIPE_SZ = 1032  # Linux fcntl: the capacity of a pipe


class Driver(Sidecar):
    """One sidecar process, driven the way a busy user drives the app."""

    def __init__(self, data_dir: Path, framing: str = "ndjson", **kwargs: Any) -> None:
        self.reading = threading.Event()
        self.reading.set()
        self.trace: list[Any] = []  # every frame read from stdout, in order (batches as one list)
        self.answered: dict[Any, int] = {}  # request id → how many responses carried it
        self.schema_errors: list[str] = []
        super().__init__(data_dir, framing=framing, **kwargs)

    # --- sending -------------------------------------------------------------------------------------------------

    def frame(self, message: Any) -> bytes:
        body = json.dumps(message, ensure_ascii=False).encode("utf-8")
        return (b"Content-Length: %d\r\n\r\n" % len(body) + body) if self.framing == "lsp" else body + b"\n"

    def write_together(self, messages: list[Any]) -> int:
        """Write these frames with one `write`, so the sidecar reads them back to back; returns the trace position
        at the time of writing (no frame before it can be a consequence of these)."""
        with self._lock:
            position = len(self.trace)
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"".join(self.frame(m) for m in messages))
        self.proc.stdin.flush()
        return position

    def next_id(self) -> int:
        return next(self._ids)

    # --- receiving -----------------------------------------------------------------------------------------------

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        buffer = b""
        while True:
            self.reading.wait()
            try:
                chunk = self.proc.stdout.read1(65536)
            except (ValueError, OSError):
                break
            if not chunk:
                break
            self.stdout_bytes += chunk
            buffer = self._take_frames(buffer + chunk)
        with self._lock:
            self._stdout_closed = True
            self._lock.notify_all()

    def _deliver(self, message: Any) -> None:
        with self._lock:
            self.trace.append(message)
            self.messages.put(message)
            if isinstance(message, list):
                self.batches.append(message)
                for item in message:
                    if isinstance(item, dict) and "method" not in item:
                        self._count_answer(item)
            elif "method" in message:
                try:
                    validate_notification(message["method"], message.get("params"))
                except Exception as exc:  # reported by the test, not fatal to this thread
                    self.schema_errors.append(f"{message.get('method')}: {exc}"[:500])
                self.notifications.append(message)
            elif "id" in message:
                self._count_answer(message)
                if message["id"] in self._responses:
                    self.unmatched.append(message)
                else:
                    self._responses[message["id"]] = message
            self._lock.notify_all()

    def _count_answer(self, message: dict[str, Any]) -> None:
        key = json.dumps(message.get("id"))
        self.answered[key] = self.answered.get(key, 0) + 1

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = HANG_GUARD_SECONDS) -> None:
        """Block until `condition()` holds, re-checked on every frame read; the timeout only turns a hang into a
        failure. `condition` runs under the reader's lock, so it sees a stable trace."""
        with self._lock:
            if not self._lock.wait_for(lambda: condition() or self._stdout_closed, timeout):
                raise AssertionError(f"hang guard: waited {timeout:.0f} s for {what}; stderr: {self.stderr_lines[-3:]}")
            if not condition():
                raise AssertionError(f"stdout closed while waiting for {what}; stderr: {self.stderr_lines[-3:]}")

    def frames_so_far(self) -> int:
        with self._lock:
            return len(self.trace)

    # --- reading stdout, or not -----------------------------------------------------------------------------------

    def stop_reading(self) -> None:
        self.reading.clear()

    def resume_reading(self) -> None:
        self.reading.set()

    def bytes_in_pipe(self) -> int:
        assert self.proc.stdout is not None
        pending = fcntl.ioctl(self.proc.stdout.fileno(), FIONREAD, b"\0\0\0\0")
        return int.from_bytes(pending, "little")

    def pipe_capacity(self) -> int:
        assert self.proc.stdout is not None
        return fcntl.fcntl(self.proc.stdout.fileno(), F_GETPIPE_SZ)

    # --- ending ---------------------------------------------------------------------------------------------------

    def exit_code_within_contract(self, since: float) -> tuple[int, float]:
        """Wait (hang guard only) for the exit that started at `since`; returns (code, seconds it took). Reading
        resumes afterwards so every frame left in the pipe is read."""
        try:
            code = self.proc.wait(HANG_GUARD_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill_now()
            raise AssertionError("hang guard: the sidecar did not exit") from None
        took = time.monotonic() - since
        self.resume_reading()
        self._release()
        return code, took

    def sigterm(self) -> float:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        return started

    def kill_now(self) -> int:
        if self.proc.poll() is None:
            self.proc.kill()
        code = self.proc.wait(HANG_GUARD_SECONDS)
        self.resume_reading()
        self._release()
        return code

    def close_stdin_now(self) -> float:
        started = time.monotonic()
        self.close_stdin()
        return started


def rows_in_database(data_dir: Path, status: str) -> list[tuple[str, str, str]]:
    """(id, conversation_id, content) of every message row with this status, read from the file after exit."""
    path = data_dir / DB_FILE_NAME
    assert path.exists(), f"no database file at {path}"
    connection = sqlite3.connect(path)
    try:
        return connection.execute(
            "SELECT id, conversation_id, content FROM messages WHERE status = ?", (status,)
        ).fetchall()
    finally:
        connection.close()
