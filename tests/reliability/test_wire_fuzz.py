"""Property-based fuzzing of the wire against one long-lived sidecar per test (CONTRACT §1).

Invariants after every example: each request with an id gets exactly one valid JSON-RPC response with that id, no
answer is an internal error, the process stays alive; a rejected mutation changes no row. At the end of each test:
stdout parses frame by frame, stdin EOF exits with code 0, and `PRAGMA integrity_check` is ok.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import integrity_check
from tests.reliability import tally
from tests.reliability.conftest import Profile, hypothesis_settings
from tests.reliability.schema_strategies import READ_ONLY, methods, params_for
from tests.reliability.wire import known_ids, parse_stdout, responses_by_id, snapshot
from tests.sidecar_client import Sidecar
from tests.stdio.chat_setup import demo_config, make_agent, make_room

INTERNAL_ERROR = -32603
MAX_FRAME = 16 * 1024 * 1024
ANSWER_GUARD_SECONDS = 10.0


def _mutates(method: str) -> bool:
    return method not in READ_ONLY and not method.endswith((":list", ":get"))


def _frame(message: Any) -> bytes:
    # ensure_ascii: a lone surrogate travels as the `\ud800` escape, the only way JSON can carry one.
    return json.dumps(message, ensure_ascii=True).encode("ascii")


def _database_open(sidecar: Sidecar) -> None:
    """Wait until the database file exists. The sidecar opens it in the background after start-up, and a session
    that ends first rightly leaves no file at all; `integrity_check` must not depend on which came first."""
    assert isinstance(sidecar.call("conversations:list"), list)


def _finish(sidecar: Sidecar, expected: Counter[str], optional: Counter[str] | None = None) -> list[Any]:
    """End the session by stdin EOF and check the whole of stdout: each expected id answered exactly that often
    (plus at most its `optional` count: invalid requests whose id could be read may be answered with it)."""
    assert sidecar.proc.poll() is None, "the sidecar died during fuzzing"
    _database_open(sidecar)
    assert sidecar.stop() == 0
    messages = parse_stdout(bytes(sidecar.stdout_bytes), sidecar.framing)
    answered = responses_by_id(messages)
    optional = optional or Counter()
    wrong = {i: (n, answered[i]) for i, n in expected.items() if not n <= answered[i] <= n + optional[i]}
    assert not wrong, f"{len(wrong)} ids answered the wrong number of times, e.g. {list(wrong.items())[:5]}"
    assert integrity_check(sidecar.data_dir) == "ok"
    return messages


def _seed(sidecar: Sidecar) -> None:
    """A little of everything, so fuzzed ids can hit real rows and rejections have rows to (not) change."""
    agent = make_agent(sidecar, "Seed", demo_config(sidecar), "demo")
    room = make_room(sidecar, [agent], "seeded")
    sidecar.call("messages:create", {"conversationId": room.conversation_id, "role": "user", "content": "hello"})


def test_schema_shaped_params_get_one_answer_each_and_a_rejected_mutation_changes_nothing(
    spawn_sidecar: Callable[..., Sidecar], profile: Profile
) -> None:
    sidecar = spawn_sidecar()
    _seed(sidecar)
    table = methods()
    names = sorted(table)
    ids = itertools.count(10_000)
    expected: Counter[str] = Counter()

    @hypothesis_settings(profile, profile.fuzz_examples)
    @given(st.data())
    def one_request(data: st.DataObject) -> None:
        method = data.draw(st.sampled_from(names), label="method")
        before = snapshot(sidecar) if _mutates(method) else None
        pool = known_ids(before) if before else [row["id"] for row in sidecar.call("conversations:list")]
        params = data.draw(params_for(table[method], pool), label="params")
        request_id = f"fuzz-{next(ids)}"  # never an int: the client's own calls number theirs 1, 2, 3…
        sidecar.send_raw(_frame({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}))
        expected[json.dumps(request_id)] += 1
        tally.add("fuzz: requests with schema-shaped params")
        response = sidecar.response(request_id, ANSWER_GUARD_SECONDS)
        assert response.get("jsonrpc") == "2.0" and ("result" in response) != ("error" in response), response
        if "error" in response:
            assert response["error"]["code"] != INTERNAL_ERROR, f"{method} {params!r} → {response['error']}"
            if before is not None:
                assert snapshot(sidecar) == before, f"rejected {method} changed rows: {response['error']}"
        assert sidecar.proc.poll() is None

    one_request()
    _finish(sidecar, expected)


# --- mutated frames ---------------------------------------------------------------------------------------------

INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3(", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\x80"]
WEIRD_IDS = [None, True, 1.5, [1], {"a": 1}, "", 2**70, -1, "\u2603"]


@st.composite
def mutated_frame(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    """A request frame, then one or two damaging edits of its bytes or its shape."""
    message: Any = dict(base)
    shape = draw(st.sampled_from(["keep", "weird id", "bad envelope", "batch", "deep", "surrogate"]))
    if shape == "weird id":
        message["id"] = draw(st.sampled_from(WEIRD_IDS))
    elif shape == "bad envelope":
        key, value = draw(st.sampled_from([("jsonrpc", "1.0"), ("jsonrpc", None), ("method", 7), ("method", ""),
                                           ("method", "no:such"), ("params", "str"), ("extra", 1)]))
        message[key] = value
    elif shape == "batch":
        extra = draw(st.lists(st.sampled_from([1, "x", {}, [], {**base, "id": base["id"] + "-b"}]), max_size=3))
        message = [message, *extra]
    elif shape == "deep":
        message["params"] = {"x": _nest(draw(st.integers(min_value=55, max_value=75)))}
    elif shape == "surrogate":
        message["params"] = {"content": "a\ud800b"}
    data = _frame(message)
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        data = draw(_byte_edit(data))
    return data


def _nest(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = {"k": value} if depth % 2 else [value]
    return value


@st.composite
def _byte_edit(draw: st.DrawFn, data: bytes) -> bytes:
    at = draw(st.integers(min_value=0, max_value=len(data)))
    edit = draw(st.sampled_from(["truncate", "invalid utf-8", "nul", "crlf", "blank lines", "delete", "duplicate"]))
    if edit == "truncate":
        return data[:at]
    if edit == "invalid utf-8":
        return data[:at] + draw(st.sampled_from(INVALID_UTF8)) + data[at:]
    if edit == "nul":
        return data[:at] + b"\x00" + data[at:]
    if edit == "crlf":
        return data + b"\r"
    if edit == "blank lines":
        return b"\n \r\n\t\n" + data
    if edit == "delete":
        return data[:at] + data[at + 1 :]
    return data[:at] + data[at : at + 8] + data[at:]


def _answerable_ids(line: bytes, requests: bool = True) -> Counter[str]:
    """Ids the contract says must be answered for this NDJSON line (requests whose id can be read); with
    `requests=False`, the readable ids of invalid requests instead, which may be answered with that id or null."""
    line = line.rstrip(b"\r")
    if not line.strip():
        return Counter()
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Counter()
    items = [message] if isinstance(message, dict) else message if isinstance(message, list) else []
    if isinstance(message, list) and (b"\\ud" in line.lower() or _depth(message) > 64):
        items = []  # the whole batch is refused with one null-id error
    return Counter(json.dumps(m["id"]) for m in items if isinstance(m, dict) and _has_plain_id(m)
                   and _is_request(m) == requests)


def _has_plain_id(message: dict[str, Any]) -> bool:
    return isinstance(message.get("id"), str | int) and not isinstance(message.get("id"), bool)


def _is_request(message: dict[str, Any]) -> bool:
    return _has_plain_id(message) and message.get("jsonrpc") == "2.0" and isinstance(message.get("method"), str)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _take_batch_answering(sidecar: Sidecar, ids: Counter[str]) -> None:
    """Wait for the array that answers these ids (an earlier example's batch may still sit unclaimed)."""

    def find() -> list[Any] | None:
        return next((b for b in sidecar.batches if not ids - Counter(json.dumps(r.get("id")) for r in b)), None)

    sidecar.wait_for_output(lambda: find() is not None, ANSWER_GUARD_SECONDS)
    sidecar.batches.remove(find())


def test_mutated_ndjson_frames_never_tear_the_stream_nor_cost_another_request_its_answer(
    spawn_sidecar: Callable[..., Sidecar], profile: Profile
) -> None:
    sidecar = spawn_sidecar()
    expected: Counter[str] = Counter()
    optional: Counter[str] = Counter()
    sentinels = itertools.count(1)
    sent: list[bytes] = []  # the frames so far (cut short), to name the culprit if the process dies

    @hypothesis_settings(profile, profile.frame_examples)
    @given(st.data())
    def one_frame(data: st.DataObject) -> None:
        method, params = data.draw(st.sampled_from([("ping", None), ("conversations:list", None),
                                                    ("messages:create", {"conversationId": "x", "role": "user",
                                                                         "content": "hi"})]))
        base = {"jsonrpc": "2.0", "id": f"f-{uuid.uuid4().hex}", "method": method, "params": params or {}}
        frame = data.draw(mutated_frame(base), label="frame")
        assert sidecar.proc.poll() is None, f"the sidecar died after {sent[-1:]!r}: {sidecar.stderr_lines[-3:]}"
        sent.append(frame[:300])
        sidecar.send_raw(frame + b"\n", framed=False)
        lines = frame.split(b"\n")
        owed = sum((_answerable_ids(line) for line in lines), Counter())
        sentinel = f"s-{next(sentinels)}"
        sidecar.request("ping", request_id=sentinel)
        tally.add("fuzz: mutated frames")
        batch_ids = sum((_answerable_ids(line) for line in lines if line.lstrip().startswith(b"[")), Counter())
        for request_id in owed - batch_ids:
            sidecar.response(json.loads(request_id), ANSWER_GUARD_SECONDS)
        if batch_ids:
            _take_batch_answering(sidecar, batch_ids)
        assert sidecar.response(sentinel, ANSWER_GUARD_SECONDS)["result"] == {}
        expected.update(owed)
        optional.update(sum((_answerable_ids(line, requests=False) for line in lines), Counter()))
        expected[json.dumps(sentinel)] += 1
        assert sidecar.proc.poll() is None

    one_frame()
    _finish(sidecar, expected, optional)


@pytest.mark.parametrize(
    ("name", "frame", "kind"),
    [
        ("a 10 MB line of valid JSON", b'{"jsonrpc":"2.0","id":"big","method":"ping","params":{"pad":"'
         + b"x" * 10_000_000 + b'"}}', None),
        ("a 10 MB message body", b'{"jsonrpc":"2.0","id":"body","method":"messages:create","params":{"conversationId"'
         b':"x","role":"user","content":"' + b"y" * 10_000_000 + b'"}}', None),
        ("a 17 MiB line", b'{"jsonrpc":"2.0","id":"huge","method":"ping","params":{"pad":"' + b"z" * (MAX_FRAME + 1)
         + b'"}}', "too_large"),
        ("a 17 MiB line of garbage", b"\xff" * (MAX_FRAME + 10), "too_large"),
        ("100 levels of nesting", b'{"jsonrpc":"2.0","id":"deep","method":"ping","params":{"a":' + b"[" * 100
         + b"]" * 100 + b"}}", "too_deep"),
    ],
)
def test_huge_and_deep_frames_are_refused_or_answered_and_the_next_request_still_is(
    spawn_sidecar: Callable[..., Sidecar], name: str, frame: bytes, kind: str | None
) -> None:
    sidecar = spawn_sidecar()
    sidecar.send_raw(frame + b"\n", framed=False)
    assert sidecar.call("ping") == {}
    tally.add("fuzz: huge or deep frames")
    messages = _finish(sidecar, Counter())
    errors = [m for m in messages if "error" in m]
    assert len(errors) == 1, name
    if kind is not None:
        assert (errors[0]["error"]["code"], errors[0]["error"]["data"]["kind"]) == (-32600, kind)
    else:
        assert errors[0]["error"]["code"] == -32602 and errors[0]["id"] in ("big", "body")


# --- LSP framing ------------------------------------------------------------------------------------------------

_BODY = b'{"jsonrpc":"2.0","id":"lsp","method":"ping"}'


@pytest.mark.parametrize(
    ("name", "bytes_sent"),
    [
        ("a Content-Length shorter than the body", b"Content-Length: %d\r\n\r\n" % (len(_BODY) - 5) + _BODY),
        ("a non-numeric Content-Length", b"Content-Length: ten\r\n\r\n" + _BODY),
        ("a negative Content-Length", b"Content-Length: -3\r\n\r\n" + _BODY),
        ("a header without Content-Length", b"Content-Type: application/json\r\n\r\n" + _BODY),
        ("a header line without a colon", b"Content-Length: 44\r\nGarbage\r\n\r\n" + _BODY),
        ("a 9 KiB header", b"Content-Length: 44\r\nX-Pad: " + b"p" * 9216 + b"\r\n\r\n" + _BODY),
        ("invalid UTF-8 in a correctly framed body", b"Content-Length: 5\r\n\r\n\xff\xfe\xfd{}"),
        ("a declared and sent 17 MiB body", b"Content-Length: %d\r\n\r\n" % (MAX_FRAME + 1) + b" " * (MAX_FRAME + 1)),
    ],
)
def test_a_broken_lsp_frame_costs_at_most_itself_and_the_session_reads_on(
    spawn_sidecar: Callable[..., Sidecar], name: str, bytes_sent: bytes
) -> None:
    sidecar = spawn_sidecar(framing="lsp")
    assert sidecar.call("ping") == {}  # fixes the session's framing as LSP
    sidecar.send_raw(bytes_sent, framed=False)
    sentinel = sidecar.request("ping", request_id="after")
    assert sidecar.response(sentinel, ANSWER_GUARD_SECONDS)["result"] == {}, name
    tally.add("fuzz: broken LSP frames")
    _finish(sidecar, Counter({json.dumps("after"): 1}))


def test_an_initialize_naming_a_process_id_beyond_pid_t_is_answered_and_ends_the_session_cleanly(
    spawn_sidecar: Callable[..., Sidecar],
) -> None:
    """Found by fuzzing: such a pid crashed the parent watch (exit code 1, no answer). No such process can exist,
    so the parent counts as gone: the contract's clean exit with code 0."""
    sidecar = spawn_sidecar()
    _database_open(sidecar)  # the session ends on its own right after initialize: the file must exist by then
    assert sidecar.call("initialize", {"processId": 2**63})["serverInfo"]["name"] == "chat-sidecar"
    assert sidecar.wait_exit() == 0
    assert integrity_check(sidecar.data_dir) == "ok"
