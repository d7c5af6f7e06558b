"""A small synchronous client for a sidecar child process (NDJSON framing): what a script driving the
sidecar over stdio needs, and what `chat-sidecar demo` uses.
"""

from __future__ import annotations

import itertools
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO, Any


class SidecarError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", "error"))
        self.code = error.get("code")
        self.data = error.get("data")


def sidecar_command() -> list[str]:
    """How to start a sidecar from this program: the frozen binary starts itself, a source install uses -m."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "sidecar"]


class SidecarClient:
    """Spawns the sidecar with piped stdio (as Electron does); requests block until their response comes.

    Notifications are queued in `notifications` in arrival order.
    """

    def __init__(self, args: Sequence[str], stderr: IO[bytes] | int | None = subprocess.DEVNULL) -> None:
        self.proc = subprocess.Popen(
            [*sidecar_command(), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
        )
        self.notifications: queue.Queue[dict[str, Any]] = queue.Queue()
        self._pending: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def request_async(self, method: str, params: dict[str, Any] | None = None) -> queue.Queue[dict[str, Any]]:
        """Send a request now; its response arrives later in the returned queue."""
        request_id = next(self._ids)
        answer: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1)
        with self._lock:
            self._pending[request_id] = answer
        self._send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}})
        return answer

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return result_of(self.request_async(method, params).get())

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params or {}})

    def close(self, timeout: float = 10.0) -> int:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        return self.proc.wait(timeout)

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode("utf-8") + b"\n")
        self.proc.stdin.flush()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            message = json.loads(line)
            if "method" in message:
                self.notifications.put(message)
                continue
            with self._lock:
                answer = self._pending.pop(message.get("id"), None)
            if answer is not None:
                answer.put(message)


def result_of(response: dict[str, Any]) -> Any:
    if "error" in response:
        raise SidecarError(response["error"])
    return response["result"]
