"""A stdlib HTTP fake of the OpenAI Chat Completions and Anthropic Messages APIs, behaviour chosen by model name.

Endpoints: ``POST /v1/chat/completions`` (OpenAI), ``POST /v1/messages`` (Anthropic), both as JSON or as SSE
when ``"stream": true``; ``GET /v1/models`` in both formats (Anthropic's when the request has an
``anthropic-version`` header, as its SDK sends: `ANTHROPIC_MODELS` paged by ``limit`` (default 20), ``after_id`` and
``before_id`` with ``has_more``/``first_id``/``last_id``; else OpenAI's ``{"object": "list", "data": [...]}`` of
`OPENAI_MODELS`, one page); ``GET /_admin/stats`` and ``POST /_admin/reset``.

A base URL whose path starts with ``/nomodels`` (``http://127.0.0.1:N/nomodels/v1`` for OpenAI,
``http://127.0.0.1:N/nomodels`` for Anthropic) is a server without a models endpoint: ``GET …/v1/models`` answers
404 in the API's error format, while its completions and messages endpoints work as usual.

The model name is split on ``-`` and these tokens pick the behaviour (combinable, unknown tokens are ignored, so
``gpt-4o-ok`` and ``claude-words-5-pace-20`` both work):

    ok                 the default reply: ``Fake reply to "<first 40 chars of the last user message>".``
    words-<n>          the reply is exactly n words: the default reply, cut or padded with ``lorem``-style filler
    pace-<ms>          wait ms between streamed chunks (one chunk per word)
    slow-<secs>        wait secs (float) before the first byte of the response
    err-<status>       answer status (400 401 403 404 408 413 422 429 500 502 503 504 529) with a real-format body
    retryafter-<secs>  add ``Retry-After: secs`` to an error answer (with err-429/503, or flaky-…)
    retryafterms-<ms>  add ``retry-after-ms: ms`` to an error answer
    flaky-<status>-<n> the first n requests with this exact model name answer status, later ones succeed
    hang               send nothing until the client goes away (or the server stops)
    reset              close the socket with a TCP reset after a few streamed chunks
    malformed          send an SSE data line that is not JSON after a few chunks
    midstream          send the provider's in-stream error event after a few chunks (overloaded/server error)
    midstream-<status> the same with the error of that status (Anthropic: its error type, e.g. rate_limit_error)
    gate-<n>           hold the response until n ``gate-<n>`` requests are open at once (a barrier; 500 after 10 s)
    echo               reply with JSON: OpenAI ``messages``; Anthropic ``{"system": …, "messages": …}``
    noauth             (OpenAI) accept a request without an Authorization header
    nodone             stream the text, then end the response cleanly without the final event: OpenAI sends no
                       ``finish_reason`` chunk, usage chunk or ``[DONE]``; Anthropic no ``message_delta`` or
                       ``message_stop`` (with ``words-0``: no text at all)
    jsonbody           answer a streaming request with the whole non-streamed JSON body (200 application/json)
    stop-length        end the reply at the token limit: OpenAI ``finish_reason: "length"``, Anthropic
                       ``stop_reason: "max_tokens"`` (streamed or not)
    stop-filter        end the reply for safety: OpenAI ``finish_reason: "content_filter"``, Anthropic
                       ``stop_reason: "refusal"``
    stop-tools         end the reply with a tool call's reason (the text still arrives): OpenAI
                       ``finish_reason: "tool_calls"``, Anthropic ``stop_reason: "tool_use"``
    cached-<n>         n more input tokens, read from a prompt cache: OpenAI ``prompt_tokens`` includes them and
                       ``prompt_tokens_details.cached_tokens`` is n; Anthropic ``cache_read_input_tokens`` is n (its
                       ``input_tokens`` stays the uncached part)
    cachewrite-<n>     (Anthropic) ``cache_creation_input_tokens`` is n (input written to the cache)
    reasoning-<n>      n more output tokens spent on reasoning: OpenAI ``completion_tokens`` includes them and
                       ``completion_tokens_details.reasoning_tokens`` is n; Anthropic ``output_tokens`` includes them
    cost-<n>           (OpenAI) the usage reports what the call cost, as routers do: ``usage.cost`` is n micro-dollars
                       (n / 1,000,000 US dollars)
    nousage            report no usage at all: OpenAI sends no usage chunk (and no ``usage`` in a JSON body);
                       Anthropic's ``message_start``, ``message_delta`` and JSON body carry no ``usage``
    skip               answer exactly ``SKIP`` (auto mode's "nothing to add")
    skipafter-<n>      the first n requests with this exact model name answer normally, later ones ``SKIP``
    mention-<Name>     start the reply with ``@Name`` (auto mode: that agent speaks next)
    ctx-<n>            a context limit of n tokens, counted as the usage count below (the words of the prompt): a
                       longer prompt gets the real APIs' overflow error, 400 ``invalid_request_error``: OpenAI with
                       ``code: "context_length_exceeded"`` and "This model's maximum context length is n tokens.
                       However, your messages resulted in N tokens…"; Anthropic "prompt is too long: N tokens > n
                       maximum"
    nocount            (with ctx-<n>) the overflow message states no counts: OpenAI "Your input exceeds the context
                       window of this model…", Anthropic "prompt is too long"

Every complete stream ends like the real APIs': OpenAI with a ``finish_reason`` chunk, the usage chunk (when
``stream_options.include_usage``) and ``data: [DONE]``; Anthropic with ``message_delta`` (``stop_reason``, usage)
and ``message_stop``.

Strictness, like the real APIs: a missing credential is 401 (OpenAI wants ``Authorization: Bearer`` unless the
server runs with ``require_auth=False`` or the model says ``noauth``; Anthropic accepts Bearer or ``x-api-key``).
A key that starts with ``wrong`` is refused on every endpoint with the real 401 body (OpenAI ``invalid_api_key``
"Incorrect API key provided: …", Anthropic ``authentication_error`` "invalid x-api-key").
A broken request shape is 400 with the provider's error JSON: unknown top-level keys, no ``model``, empty or
missing ``messages``, an empty or whitespace-only content, ``stream_options`` without ``stream``; OpenAI: a
``system``/``developer`` message anywhere but first, unknown roles, temperature outside 0..2, ``max_tokens`` and
``max_completion_tokens`` together, and for reasoning models (``o1``/``o3``/``o4``/``gpt-5`` prefixes) any of
temperature, top_p or max_tokens; Anthropic: no ``anthropic-version`` header, no ``max_tokens``, roles that do not
alternate user/assistant starting with user, a ``system`` role inside ``messages``, temperature outside 0..1.

Usage: input tokens are the word count of the prompt (system included), output tokens the reply's word count
(plus what ``cached-<n>``, ``cachewrite-<n>`` and ``reasoning-<n>`` add).

Standalone: ``python tests/fake_provider.py [--port 0] [--no-require-auth]`` prints ``{"port": N}`` as its first
stdout line and serves until stdin closes or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

GATE_TIMEOUT_S = 10.0
_PIECES_BEFORE_FAULT = 2  # reset/malformed/midstream strike after this many text pieces
_FILLER = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()
_AUTH_HEADERS = ("authorization", "x-api-key")
WRONG_KEY_PREFIX = "wrong"
NO_MODELS_PREFIX = "/nomodels"  # a base URL path under it is a server without a models endpoint
# What GET /v1/models lists: catalogue models (exact and dated snapshots) and models the catalogue does not know.
OPENAI_MODELS = (
    "gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-mini", "gpt-5-mini", "o3", "text-embedding-3-small", "whisper-1",
)  # fmt: skip
ANTHROPIC_MODELS = (
    "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805", "claude-3-haiku-20240307",
    *(f"claude-fake-{n:02d}" for n in range(1, 22)),  # more than one page of 20, so the SDK must follow has_more
)  # fmt: skip

_OPENAI_KEYS = frozenset(
    "model messages stream stream_options temperature top_p max_tokens max_completion_tokens n stop "
    "presence_penalty frequency_penalty seed user response_format tools tool_choice logprobs top_logprobs "
    "logit_bias parallel_tool_calls reasoning_effort metadata store service_tier verbosity".split()
)
_OPENAI_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_ANTHROPIC_KEYS = frozenset(
    "model messages max_tokens system temperature top_p top_k stop_sequences stream metadata tools "
    "tool_choice thinking service_tier".split()
)
_OPENAI_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")

_OPENAI_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", None),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}
_ANTHROPIC_ERRORS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class Behaviour:
    """What the model name asks for."""

    words: int | None = None
    pace_s: float = 0.0
    slow_s: float = 0.0
    err: int | None = None
    retry_after: str | None = None
    retry_after_ms: str | None = None
    flaky: tuple[int, int] | None = None
    gate: int | None = None
    hang: bool = False
    reset: bool = False
    malformed: bool = False
    midstream: bool = False
    midstream_status: int | None = None
    echo: bool = False
    noauth: bool = False
    nodone: bool = False
    jsonbody: bool = False
    stop: str | None = None  # "length", "filter" or "tools"
    cached: int = 0
    cachewrite: int = 0
    reasoning: int = 0
    cost: int | None = None  # micro-dollars
    nousage: bool = False
    skip: bool = False
    skip_after: int | None = None
    mention: str | None = None
    ctx: int | None = None
    nocount: bool = False


# How each API says why a reply ended: the normal end, then `stop-length` and `stop-filter`.
_STOP_REASONS = {
    "openai": {None: "stop", "length": "length", "filter": "content_filter", "tools": "tool_calls"},
    "anthropic": {None: "end_turn", "length": "max_tokens", "filter": "refusal", "tools": "tool_use"},
}


def parse_behaviour(model: str) -> Behaviour:
    """Read the dash-separated behaviour tokens of a model name; unknown tokens are ignored."""
    tokens = model.split("-")
    opts: dict[str, Any] = {}
    flags = {"hang", "reset", "malformed", "midstream", "echo", "noauth", "nodone", "jsonbody", "skip", "nocount",
             "nousage"}
    i = 0
    while i < len(tokens):
        tok, nxt = tokens[i], tokens[i + 1 : i + 3]
        try:
            if tok in flags:
                opts[tok] = True
                # A status has 3 digits: a test's numeric tag after `midstream` is not read as one.
                if tok == "midstream" and nxt and nxt[0].isdigit() and len(nxt[0]) == 3:
                    opts["midstream_status"], i = int(nxt[0]), i + 1
            elif tok == "words":
                opts["words"], i = int(nxt[0]), i + 1
            elif tok == "pace":
                opts["pace_s"], i = int(nxt[0]) / 1000, i + 1
            elif tok == "slow":
                opts["slow_s"], i = float(nxt[0]), i + 1
            elif tok == "err":
                opts["err"], i = int(nxt[0]), i + 1
            elif tok == "retryafter":
                opts["retry_after"], i = str(int(float(nxt[0]))), i + 1
            elif tok == "retryafterms":
                opts["retry_after_ms"], i = str(int(nxt[0])), i + 1
            elif tok == "flaky":
                opts["flaky"], i = (int(nxt[0]), int(nxt[1])), i + 2
            elif tok == "gate":
                opts["gate"], i = int(nxt[0]), i + 1
            elif tok == "ctx":
                opts["ctx"], i = int(nxt[0]), i + 1
            elif tok in ("cached", "cachewrite", "reasoning", "cost"):
                opts[tok], i = int(nxt[0]), i + 1
            elif tok == "skipafter":
                opts["skip_after"], i = int(nxt[0]), i + 1
            elif tok == "mention" and nxt:
                opts["mention"], i = nxt[0], i + 1
            elif tok == "stop" and nxt and nxt[0] in ("length", "filter", "tools"):
                opts["stop"], i = nxt[0], i + 1
        except (IndexError, ValueError):
            pass  # a keyword without its number is just another unknown token
        i += 1
    return Behaviour(**opts)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any
    time: float

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None


@dataclass
class _State:
    require_auth: bool
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    log: list[RecordedRequest] = field(default_factory=list)
    open_now: int = 0
    max_concurrent: int = 0
    flaky_counts: dict[str, int] = field(default_factory=dict)
    gates: dict[int, threading.Barrier] = field(default_factory=dict)

    def enter(self, rec: RecordedRequest) -> None:
        with self.lock:
            self.log.append(rec)
            self.open_now += 1
            self.max_concurrent = max(self.max_concurrent, self.open_now)

    def leave(self) -> None:
        with self.lock:
            self.open_now -= 1

    def flaky_should_fail(self, model: str, times: int) -> bool:
        with self.lock:
            seen = self.flaky_counts.get(model, 0)
            self.flaky_counts[model] = seen + 1
            return seen < times

    def gate(self, n: int) -> threading.Barrier:
        with self.lock:
            barrier = self.gates.get(n)
            if barrier is None or barrier.broken:
                barrier = self.gates[n] = threading.Barrier(n)
            return barrier

    def reset(self) -> None:
        with self.lock:
            self.log.clear()
            self.max_concurrent = self.open_now
            self.flaky_counts.clear()
            for barrier in self.gates.values():
                barrier.abort()
            self.gates.clear()

    def stats(self) -> dict[str, Any]:
        with self.lock:
            log = [_redacted(r) for r in self.log]
            return {"requests": len(log), "max_concurrent": self.max_concurrent, "open": self.open_now, "log": log}


def _redacted(rec: RecordedRequest) -> dict[str, Any]:
    headers = {k: ("[present]" if k in _AUTH_HEADERS else v) for k, v in rec.headers.items()}
    return {**asdict(rec), "headers": headers}


class _BadRequest(Exception):
    """A request the real API would refuse; str is the error message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _ClientGone(Exception):
    """The client closed the connection while we were waiting or writing."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or cancel mid-stream are normal here: stay quiet about them.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, _ClientGone, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Responses go out in several small writes; with Nagle on, a kept-alive connection's next response waits for
    # the client's delayed ACK (~40 ms), which the benchmarks would charge to the sidecar.
    disable_nagle_algorithm = True
    server: _Server
    timeout = 30  # idle keep-alive connections end on their own

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # --- routing ---------------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        if self.path == "/_admin/stats":
            self._send_json(200, self.server.state.stats())
        elif self.path.split("?")[0].removeprefix(NO_MODELS_PREFIX) == "/v1/models":
            headers = {k.lower(): v for k, v in self.headers.items()}
            state = self.server.state
            state.enter(RecordedRequest("GET", self.path, headers, None, time.time()))
            try:
                self._serve_models("anthropic" if "anthropic-version" in headers else "openai", headers)
            finally:
                state.leave()
        else:
            self._send_json(404, {"error": {"message": f"Unknown path {self.path}", "type": "not_found"}})

    def _serve_models(self, api: str, headers: dict[str, str]) -> None:
        try:
            _check_auth(api, headers, Behaviour(), self.server.state.require_auth)
        except _BadRequest as exc:
            self._send_error(api, exc.status, str(exc), Behaviour())
            return
        if self.path.startswith(NO_MODELS_PREFIX + "/"):
            self._send_error(api, 404, f"Unknown path {self.path.split('?')[0]}", Behaviour())
        elif api == "openai":
            data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "system"} for m in OPENAI_MODELS]
            self._send_json(200, {"object": "list", "data": data}, api=api)
        else:
            self._send_json(200, _anthropic_models_page(parse_qs(urlsplit(self.path).query)), api=api)

    def do_POST(self) -> None:
        if self.path == "/_admin/reset":
            self._read_body()
            self.server.state.reset()
            self._send_json(200, {"ok": True})
            return
        path = self.path.split("?")[0].removeprefix(NO_MODELS_PREFIX)  # the prefix only takes the models endpoint
        api = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}.get(path)
        raw = self._read_body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        rec = RecordedRequest("POST", self.path, headers, body, time.time())
        state = self.server.state
        state.enter(rec)
        try:
            if api is None:
                self._send_json(404, {"error": {"message": f"Unknown path {self.path}", "type": "not_found"}})
            else:
                self._serve_api(api, headers, body)
        except (ConnectionError, _ClientGone):
            self.close_connection = True
        finally:
            state.leave()

    def _serve_api(self, api: str, headers: dict[str, str], body: Any) -> None:
        model = body.get("model") if isinstance(body, dict) else None
        beh = parse_behaviour(model if isinstance(model, str) else "")
        try:
            _check_auth(api, headers, beh, self.server.state.require_auth)
            (_check_openai if api == "openai" else _check_anthropic)(headers, body, beh)
        except _BadRequest as exc:
            self._send_error(api, exc.status, str(exc), beh)
            return
        self._wait(beh.slow_s)
        if beh.hang:
            self._hang()
            return
        if beh.ctx is not None and _prompt_words(api, body) > beh.ctx:
            self._send_json(400, _overflow_error(api, _prompt_words(api, body), beh), api=api)
            return
        status = self._planned_status(str(model), beh)
        if status is not None:
            self._send_error(api, status, _status_message(status), beh)
            return
        text = _reply_text(api, body, beh)
        # skipafter counts requests per model name the way flaky does: "should fail" means "still answers".
        answers = beh.skip_after is None or self.server.state.flaky_should_fail(str(model), beh.skip_after)
        if beh.skip or not answers:
            text = "SKIP"
        usage = (_prompt_words(api, body), len(text.split()))
        if body.get("stream") and not beh.jsonbody:
            self._stream(api, body, beh, text, usage)
        else:
            self._send_json(
                200,
                _openai_completion(body, text, usage) if api == "openai" else _anthropic_message(body, text, usage),
                api=api,
            )

    def _planned_status(self, model: str, beh: Behaviour) -> int | None:
        if beh.flaky and self.server.state.flaky_should_fail(model, beh.flaky[1]):
            return beh.flaky[0]
        if beh.err is not None:
            return beh.err
        if beh.gate is not None and not self._pass_gate(beh.gate):
            return 500
        return None

    def _pass_gate(self, n: int) -> bool:
        try:
            self.server.state.gate(n).wait(timeout=GATE_TIMEOUT_S)
        except threading.BrokenBarrierError:
            return False
        return True

    # --- reading and writing ------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(
        self, status: int, payload: Any, *, api: str | None = None, extra: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in {**_request_id_header(api), **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error(self, api: str, status: int, message: str, beh: Behaviour) -> None:
        extra = {}
        if beh.retry_after is not None:
            extra["Retry-After"] = beh.retry_after
        if beh.retry_after_ms is not None:
            extra["retry-after-ms"] = beh.retry_after_ms
        payload = _openai_error(status, message) if api == "openai" else _anthropic_error(status, message)
        self._send_json(status, payload, api=api, extra=extra)

    def _stream(self, api: str, body: dict[str, Any], beh: Behaviour, text: str, usage: tuple[int, int]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in _request_id_header(api).items():
            self.send_header(name, value)
        self.end_headers()
        events = _openai_events(body, text, usage) if api == "openai" else _anthropic_events(body, text, usage)
        # OpenAI opens with one role chunk; Anthropic with message_start, content_block_start and ping.
        fault_at = _PIECES_BEFORE_FAULT + (1 if api == "openai" else 3)
        for i, event in enumerate(events):
            if i == fault_at and self._fault(api, beh):
                return
            if i > 1:
                self._wait(beh.pace_s)
            self._write_chunk(event.encode())
        self._write_chunk(b"")  # the terminating zero-length chunk

    def _fault(self, api: str, beh: Behaviour) -> bool:
        if beh.reset:
            self._reset_socket()
            return True
        if beh.malformed:
            prefix = b"" if api == "openai" else b"event: content_block_delta\n"
            self._write_chunk(prefix + b'data: {"choices": [{"delta": {"content": "cut\n\n')
            self._write_chunk(b"")
            return True
        if beh.midstream:
            self._write_chunk(_midstream_error(api, beh.midstream_status).encode())
            self._write_chunk(b"")
            return True
        return False

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _reset_socket(self) -> None:
        # SO_LINGER 0 turns close() into a TCP RST: the client sees a dropped stream, not a clean end.
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _wait(self, seconds: float) -> None:
        if seconds > 0 and self.server.state.stopping.wait(seconds):
            raise _ClientGone

    def _hang(self) -> None:
        """Say nothing until the client disconnects or the server stops."""
        conn = self.connection
        while not self.server.state.stopping.is_set():
            readable, _, _ = select.select([conn], [], [], 0.05)
            if readable:
                try:
                    if conn.recv(1, socket.MSG_PEEK) == b"":
                        break
                except OSError:
                    break
                self.server.state.stopping.wait(0.05)
        self.close_connection = True


# --- request checks ------------------------------------------------------------------------------------------


def _check_auth(api: str, headers: dict[str, str], beh: Behaviour, require_auth: bool) -> None:
    bearer = headers.get("authorization", "")
    has_bearer = bearer.startswith("Bearer ") and bool(bearer[7:].strip())
    if api == "openai":
        if require_auth and not beh.noauth and not has_bearer:
            raise _BadRequest(
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                401,
            )
    elif not has_bearer and not headers.get("x-api-key", "").strip():
        raise _BadRequest("x-api-key header is required", 401)
    _check_key(api, headers)


def _check_key(api: str, headers: dict[str, str]) -> None:
    key = headers.get("authorization", "").removeprefix("Bearer ").strip() or headers.get("x-api-key", "").strip()
    if not key.startswith(WRONG_KEY_PREFIX):
        return
    if api == "openai":
        shown = f"{key[:3]}{'*' * max(0, len(key) - 7)}{key[-4:]}"  # as the real API masks it
        raise _BadRequest(
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            401,
        )
    raise _BadRequest("invalid x-api-key", 401)


def _anthropic_models_page(query: dict[str, list[str]]) -> dict[str, Any]:
    """One page of `ANTHROPIC_MODELS` as the real API pages them (newest first there; here in the tuple's order)."""
    ids = list(ANTHROPIC_MODELS)
    limit = int(query.get("limit", ["20"])[0])
    start, end = 0, len(ids)
    if "after_id" in query:
        start = ids.index(query["after_id"][0]) + 1
    if "before_id" in query:
        end = ids.index(query["before_id"][0])
        start = max(0, end - limit)
    page = ids[start : min(end, start + limit)]
    data = [
        {"type": "model", "id": m, "display_name": m.replace("-", " ").title(), "created_at": "2025-01-01T00:00:00Z"}
        for m in page
    ]
    has_more = (start + len(page) < len(ids)) if "before_id" not in query else start > 0
    return {
        "data": data,
        "has_more": has_more,
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
    }


def _check_common(body: Any, allowed: frozenset[str]) -> list[Any]:
    if not isinstance(body, dict):
        raise _BadRequest("The request body is not valid JSON.")
    extra = sorted(set(body) - allowed)
    if extra:
        raise _BadRequest(f"{extra[0]}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _BadRequest("model: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("messages: at least one message is required")
    if "stream_options" in body and not body.get("stream"):
        raise _BadRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not _text_of(msg.get("content")).strip():
            raise _BadRequest(f"messages.{i}: content must be a non-empty, non-whitespace text")
    return messages


def _check_openai(headers: dict[str, str], body: Any, beh: Behaviour) -> None:
    messages = _check_common(body, _OPENAI_KEYS)
    for i, msg in enumerate(messages):
        role = msg.get("role")
        if role not in _OPENAI_ROLES:
            raise _BadRequest(f"Invalid value: '{role}'. Supported values are: {sorted(_OPENAI_ROLES)}.")
        if role in ("system", "developer") and i > 0:
            raise _BadRequest(f"messages.{i}: a {role} message is only accepted as the first message")
    if not 0 <= body.get("temperature", 1) <= 2:
        raise _BadRequest("temperature: must be between 0 and 2")
    if not 0 <= body.get("top_p", 1) <= 1:
        raise _BadRequest("top_p: must be between 0 and 1")
    if "max_tokens" in body and "max_completion_tokens" in body:
        raise _BadRequest("max_tokens and max_completion_tokens cannot both be set")
    if body["model"].startswith(_OPENAI_REASONING_PREFIXES):
        for key in ("temperature", "top_p", "max_tokens"):
            if key in body:
                raise _BadRequest(f"Unsupported parameter: '{key}' is not supported with this model.")


def _check_anthropic(headers: dict[str, str], body: Any, beh: Behaviour) -> None:
    if not headers.get("anthropic-version"):
        raise _BadRequest("anthropic-version: header is required")
    messages = _check_common(body, _ANTHROPIC_KEYS)
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        raise _BadRequest("max_tokens: Field required")
    for i, msg in enumerate(messages):
        expected = "user" if i % 2 == 0 else "assistant"
        if msg.get("role") != expected:
            raise _BadRequest(
                f'messages.{i}.role: roles must alternate between "user" and "assistant", '
                f'starting with "user" (expected "{expected}")'
            )
    if "system" in body and not _text_of(body["system"]).strip():
        raise _BadRequest("system: text content blocks must be non-empty")
    if not 0 <= body.get("temperature", 1) <= 1:
        raise _BadRequest("temperature: Input should be less than or equal to 1")
    if not 0 <= body.get("top_p", 1) <= 1:
        raise _BadRequest("top_p: Input should be less than or equal to 1")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


# --- replies ---------------------------------------------------------------------------------------------------


def _reply_text(api: str, body: dict[str, Any], beh: Behaviour) -> str:
    messages = body["messages"]
    if beh.echo:
        payload: Any = messages if api == "openai" else {"system": body.get("system"), "messages": messages}
        return json.dumps(payload)
    last_user = next((_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    words = f'Fake reply to "{last_user[:40]}".'.split()
    if beh.words is not None:
        filler = (_FILLER[i % len(_FILLER)] for i in range(beh.words))
        words = (words + list(filler))[: beh.words]
    if beh.mention:
        words = [f"@{beh.mention}", *words]
    return " ".join(words)


def _pieces(text: str, echo: bool) -> Iterator[str]:
    """One piece per word (the space travels with the next word); echo JSON in 16-character slices."""
    if echo:
        yield from (text[i : i + 16] for i in range(0, len(text), 16))
        return
    for i, word in enumerate(text.split(" ")):
        yield word if i == 0 else " " + word


def _prompt_words(api: str, body: dict[str, Any]) -> int:
    texts = [_text_of(m.get("content")) for m in body["messages"]]
    if api == "anthropic":
        texts.append(_text_of(body.get("system")))
    return sum(len(t.split()) for t in texts)


def _openai_completion(body: dict[str, Any], text: str, usage: tuple[int, int]) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": _stop_reason("openai", body),
            }
        ],
        **_usage_field(_openai_usage(body, usage)),
    }


def _anthropic_message(body: dict[str, Any], text: str, usage: tuple[int, int]) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": text}],
        "stop_reason": _stop_reason("anthropic", body),
        "stop_sequence": None,
        **_usage_field(_anthropic_usage(body, usage)),
    }


def _usage_field(usage: dict[str, Any] | None) -> dict[str, Any]:
    return {} if usage is None else {"usage": usage}


def _openai_usage(body: dict[str, Any], usage: tuple[int, int]) -> dict[str, Any] | None:
    """The usage object as OpenAI (or a router: ``cost``) sends it, with what the model name adds."""
    beh = parse_behaviour(body["model"])
    if beh.nousage:
        return None
    prompt, completion = usage[0] + beh.cached, usage[1] + beh.reasoning
    final: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    final["total_tokens"] = prompt + completion
    if beh.cached:
        final["prompt_tokens_details"] = {"cached_tokens": beh.cached, "audio_tokens": 0}
    if beh.reasoning:
        final["completion_tokens_details"] = {"reasoning_tokens": beh.reasoning, "audio_tokens": 0}
    if beh.cost is not None:
        final["cost"] = beh.cost / 1_000_000
    return final


def _anthropic_usage(body: dict[str, Any], usage: tuple[int, int]) -> dict[str, Any] | None:
    """The usage object as Anthropic sends it: ``input_tokens`` is the uncached part, cache reads and writes apart."""
    beh = parse_behaviour(body["model"])
    if beh.nousage:
        return None
    final = {"input_tokens": usage[0], "output_tokens": usage[1] + beh.reasoning}
    if beh.cached or beh.cachewrite:
        final.update(cache_read_input_tokens=beh.cached, cache_creation_input_tokens=beh.cachewrite)
    return final


def _openai_events(body: dict[str, Any], text: str, usage: tuple[int, int]) -> Iterator[str]:
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body["model"],
        "system_fingerprint": "fp_fake",
    }
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return f"data: {json.dumps({**base, 'choices': [choice], **extra})}\n\n"

    beh = parse_behaviour(body["model"])
    yield chunk({"role": "assistant", "content": "", "refusal": None})
    for piece in _pieces(text, beh.echo):
        yield chunk({"content": piece})
    if beh.nodone:
        return  # the response ends cleanly, but without the chunk that says the reply is over
    yield chunk({}, _stop_reason("openai", body))
    final = _openai_usage(body, usage)
    if include_usage and final is not None:
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': final})}\n\n"
    yield "data: [DONE]\n\n"


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps({'type': event, **data})}\n\n"


def _anthropic_events(body: dict[str, Any], text: str, usage: tuple[int, int]) -> Iterator[str]:
    final = _anthropic_usage(body, usage)
    message = {**_anthropic_message(body, "", usage), "content": [], "stop_reason": None}
    if final is not None:
        message["usage"] = {**final, "output_tokens": 1}  # the start counts the input; message_delta the output
    yield _sse("message_start", {"message": message})
    yield _sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
    yield _sse("ping", {})
    beh = parse_behaviour(body["model"])
    for piece in _pieces(text, beh.echo):
        yield _sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
    yield _sse("content_block_stop", {"index": 0})
    if beh.nodone:
        return  # the response ends cleanly, but without message_delta and message_stop
    delta = {"stop_reason": _stop_reason("anthropic", body), "stop_sequence": None}
    output = {} if final is None else {"usage": {"output_tokens": final["output_tokens"]}}
    yield _sse("message_delta", {"delta": delta, **output})
    yield _sse("message_stop", {})


def _stop_reason(api: str, body: dict[str, Any]) -> str:
    return _STOP_REASONS[api][parse_behaviour(body["model"]).stop]


def _midstream_error(api: str, status: int | None) -> str:
    if api == "openai":
        error = {"message": "The server had an error while processing your request.", "type": "server_error"}
        if status is not None:
            error = _openai_error(status, _status_message(status))["error"]
        return f"data: {json.dumps({'error': error})}\n\n"
    if status is not None:
        return _sse("error", {"error": _anthropic_error(status, _status_message(status))["error"]})
    return _sse("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})


def _status_message(status: int) -> str:
    return {
        401: "Incorrect API key provided.",
        403: "Access denied.",
        404: "The model does not exist.",
        413: "Request too large.",
        429: "Rate limit reached.",
        529: "Overloaded",
    }.get(status, f"Fake error {status}.")


def _openai_error(status: int, message: str) -> dict[str, Any]:
    kind, code = _OPENAI_ERRORS.get(status, ("server_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _anthropic_error(status: int, message: str) -> dict[str, Any]:
    kind = _ANTHROPIC_ERRORS.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": _new_request_id()}


def _overflow_error(api: str, prompt: int, beh: Behaviour) -> dict[str, Any]:
    """The real APIs' answer to a prompt over the model's context (``ctx-<n>``), with or without the counts."""
    if api == "openai":
        message = (
            "Your input exceeds the context window of this model. Please adjust your input and try again."
            if beh.nocount
            else f"This model's maximum context length is {beh.ctx} tokens. However, your messages resulted in "
            f"{prompt} tokens. Please reduce the length of the messages."
        )
        error = {"message": message, "type": "invalid_request_error", "param": "messages"}
        return {"error": {**error, "code": "context_length_exceeded"}}
    message = "prompt is too long" if beh.nocount else f"prompt is too long: {prompt} tokens > {beh.ctx} maximum"
    return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}


def _new_request_id() -> str:
    return f"req_{uuid.uuid4().hex[:24]}"


def _request_id_header(api: str | None) -> dict[str, str]:
    if api == "openai":
        return {"x-request-id": _new_request_id()}
    if api == "anthropic":
        return {"request-id": _new_request_id()}
    return {}


# --- the public face ------------------------------------------------------------------------------------------


class FakeProvider:
    """The fake server, started on 127.0.0.1 (port 0 picks a free one) in a background thread."""

    def __init__(self, port: int = 0, *, require_auth: bool = True) -> None:
        self._requested_port = port
        self._state = _State(require_auth=require_auth)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeProvider:
        server = _Server(("127.0.0.1", self._requested_port), _Handler)
        server.state = self._state
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="fake-provider", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._state.stopping.set()  # releases hang/slow/pace waits
        self._state.reset()  # releases gates
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeProvider is not running")
        return self._server.server_address[1]

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.log)

    @property
    def max_concurrent(self) -> int:
        return self._state.max_concurrent

    def reset(self) -> None:
        self._state.reset()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-require-auth", action="store_true", help="accept OpenAI requests without a key")
    args = parser.parse_args(argv)
    fake = FakeProvider(args.port, require_auth=not args.no_require_auth).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(json.dumps({"port": fake.port}), flush=True)  # noqa: T201 - the parent reads the port here

    def watch_stdin() -> None:
        while os.read(0, 4096):
            pass
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    while not done.wait(0.2):  # a timed wait keeps the main thread responsive to signals
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
