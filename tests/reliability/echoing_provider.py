"""A hostile provider for leak tests: every answer echoes the credential it was sent (as some real APIs partly do).

OpenAI (`/v1/chat/completions`) and Anthropic (`/v1/messages`) shapes; the model name picks the answer:
``leak-401`` / ``leak-400`` / ``leak-500`` an error body quoting the key; ``leak-stream`` a 200 stream whose
in-stream error event quotes it; ``leak-reply`` (OpenAI shape) a normal reply whose text quotes it. Every error
answer also returns the key in an ``x-echoed-key`` response header.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        key = (self.headers.get("Authorization") or "").removeprefix("Bearer ") or self.headers.get("x-api-key", "")
        anthropic = self.path.startswith("/v1/messages")
        model = str(body.get("model", ""))
        said = f"Incorrect API key provided: {key}. Request to {self.path} with key={key} refused."
        if model.endswith("leak-stream"):
            self._stream_error(said, anthropic)
            return
        if model.endswith("leak-reply"):
            self._stream_reply(f"Sure. Your key is {key}, by the way.")
            return
        status = int(model.rsplit("-", 1)[1]) if model[-3:].isdigit() else 401
        payload: dict[str, Any] = (
            {"type": "error", "error": {"type": "authentication_error", "message": said}}
            if anthropic
            else {"error": {"message": said, "type": "invalid_request_error", "param": key, "code": key}}
        )
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-echoed-key", key)
        self.end_headers()
        self.wfile.write(data)

    def _stream_reply(self, text: str) -> None:
        # A complete stream: without the finish_reason chunk the provider would count it as dropped.
        chunks = [_chunk({"content": text}, None), _chunk({}, "stop")]
        self._send_events([*(f"data: {json.dumps(c)}\n\n" for c in chunks), "data: [DONE]\n\n"])

    def _stream_error(self, said: str, anthropic: bool) -> None:
        if anthropic:
            events = [
                'event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":"message",'
                '"role":"assistant","model":"x","content":[],"stop_reason":null,"stop_sequence":null,'
                '"usage":{"input_tokens":1,"output_tokens":1}}}\n\n',
                "event: error\ndata: " + json.dumps({"type": "error", "error": {"type": "api_error", "message": said}})
                + "\n\n",
            ]
        else:
            events = [f"data: {json.dumps({'error': {'message': said, 'type': 'server_error'}})}\n\n"]
        self._send_events(events)

    def _send_events(self, events: list[str]) -> None:
        data = "".join(events).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _chunk(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


class EchoingProvider:
    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> EchoingProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"
