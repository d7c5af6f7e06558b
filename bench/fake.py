"""The fake provider server (tests/fake_provider.py) in its own process, with timestamps for the benchmarks.

`python -m bench.fake` prints `{"port": N}` and serves until stdin closes. On top of the fake's own behaviour it
records, on the shared `time.monotonic()` clock (system-wide on Linux, so comparable with the client's):
each provider request when it has been read (`requests`), and each streamed text chunk right after it was
written to the socket (`chunks`, with the model name and the text piece). `GET /_bench/log` returns and
`POST /_bench/reset` clears them; `POST /_bench/config {"chunks": false}` stops chunk recording (long runs).

`FakeServer` is the parent's handle: start, read the log, stop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests import fake_provider as fp

REPO = Path(__file__).resolve().parent.parent

_lock = threading.Lock()
_requests: list[dict[str, Any]] = []
_chunks: list[dict[str, Any]] = []
_record_chunks = True
_local = threading.local()


def _chunk_text(data: bytes) -> str | None:
    for line in data.split(b"\n"):
        if not line.startswith(b"data: {"):
            continue
        event = json.loads(line[6:])
        if "choices" in event:
            choices = event["choices"]
            return choices[0]["delta"].get("content") if choices else None
        delta = event.get("delta")
        if isinstance(delta, dict):
            return delta.get("text")
    return None


class _BenchHandler(fp._Handler):
    def do_GET(self) -> None:
        if self.path == "/_bench/log":
            with _lock:
                payload = {"requests": list(_requests), "chunks": list(_chunks)}
            payload["max_concurrent"] = self.server.state.max_concurrent
            self._send_json(200, payload)
        else:
            super().do_GET()

    def do_POST(self) -> None:
        global _record_chunks
        if self.path == "/_bench/reset":
            self._read_body()
            with _lock:
                _requests.clear()
                _chunks.clear()
            self.server.state.reset()  # also drops the fake's own request log
            self._send_json(200, {"ok": True})
        elif self.path == "/_bench/config":
            _record_chunks = bool(json.loads(self._read_body() or b"{}").get("chunks", True))
            self._send_json(200, {"ok": True})
        else:
            super().do_POST()

    def _serve_api(self, api: str, headers: dict[str, str], body: Any) -> None:
        model = body.get("model") if isinstance(body, dict) else None
        _local.model = model
        with _lock:
            _requests.append({"t": time.monotonic(), "model": model})
        super()._serve_api(api, headers, body)

    def _write_chunk(self, data: bytes) -> None:
        super()._write_chunk(data)
        if _record_chunks and data:
            sent = time.monotonic()
            text = _chunk_text(data)
            if text:
                with _lock:
                    _chunks.append({"t": sent, "model": getattr(_local, "model", None), "text": text})


def main() -> int:
    fp._Handler = _BenchHandler  # type: ignore[misc]  # FakeProvider.start looks the handler class up by name
    fake = fp.FakeProvider(0, require_auth=True).start()
    print(json.dumps({"port": fake.port}), flush=True)
    while os.read(0, 4096):
        pass
    fake.stop()
    return 0


class FakeServer:
    """The parent's handle on a `python -m bench.fake` child."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fake"], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.proc.stdout is not None
        self.port: int = json.loads(self.proc.stdout.readline())["port"]

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        url = f"http://127.0.0.1:{self.port}{path}"
        request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def log(self) -> dict[str, Any]:
        return self._call("/_bench/log")

    def reset(self) -> None:
        self._call("/_bench/reset", {})

    def record_chunks(self, on: bool) -> None:
        self._call("/_bench/config", {"chunks": on})

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
