"""Load, soak and a slow client: 100 concurrent streams while lists are hammered; many turns in a row with the
sidecar's RSS sampled; a client that stops reading stdout mid-turn (CONTRACT §1 concurrency, §6 updates).

Resource thresholds are asserted in the release profile only; the quick profile records the numbers.
"""

from __future__ import annotations

import fcntl
import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import integrity_check
from tests.fake_provider import FakeProvider
from tests.reliability import tally
from tests.reliability.conftest import Profile
from tests.reliability.wire import parse_stdout, responses_by_id, rss_kib
from tests.sidecar_client import HANG_GUARD_SECONDS, Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import (
    Room,
    ask,
    assert_well_formed_updates,
    fake_config,
    make_agent,
    make_room,
    streamed_text,
    turn_updates,
)

fake = chat_setup.fake

CONVERSATIONS, AGENTS_PER_TURN, LLM_CONFIGS = 20, 5, 25  # 100 streams; each config carries 4, the engine's cap
SOAK_WARMUP_TURNS = 20
SOAK_TURNS_PER_CONVERSATION = 25
SLOW_CLIENT_REQUESTS = 300
F_GETPIPE_SZ = 1032  # Linux fcntl: the capacity of a pipe
FIONREAD = 0x541B  # Linux ioctl: bytes waiting in a pipe


def _check_turn(sidecar: Sidecar, room: Room, result: dict[str, Any]) -> None:
    """Every agent completed once; the saved reply is exactly its deltas; one user row; nothing else."""
    user_id = result["userMessageId"]
    assert result["successfulAgents"] == len(room.members), result
    rows = sidecar.call("messages:list", {"conversationId": room.conversation_id})
    assert [r["id"] for r in rows if r["role"] == "user"][-1] == user_id
    turn_rows = [r for r in rows if r.get("replyToId") == user_id]
    assert len(turn_rows) == len(room.members) and all(r["status"] == "complete" for r in turn_rows)
    for name in room.members:
        updates = turn_updates(sidecar, user_id, room.ca(name))
        assert assert_well_formed_updates(updates)["status"] == "complete"
        reply = next(r for r in turn_rows if r["conversationAgentId"] == room.ca(name))
        assert streamed_text(updates) == reply["content"], name


def test_a_hundred_concurrent_streams_all_complete_while_lists_are_hammered(
    spawn_sidecar: Callable[..., Sidecar], fake: FakeProvider
) -> None:
    sidecar = spawn_sidecar()
    tag = uuid.uuid4().hex[:6]
    model = f"m-gate-{CONVERSATIONS * AGENTS_PER_TURN}-words-12-pace-20-{tag}"  # the barrier proves all 100 open
    agents = [
        make_agent(sidecar, f"A{i}", fake_config(sidecar, fake, ("openai", "anthropic")[i % 2], f"load {i}"), model)
        for i in range(LLM_CONFIGS)
    ]
    rooms = [
        make_room(sidecar, [agents[(AGENTS_PER_TURN * c + j) % LLM_CONFIGS] for j in range(AGENTS_PER_TURN)], f"c{c}")
        for c in range(CONVERSATIONS)
    ]
    turns = {
        sidecar.request("processUserMessage", {"conversationId": room.conversation_id, "content": f"Load {i}"}): room
        for i, room in enumerate(rooms)
    }
    done = threading.Event()
    hammered: list[int] = []
    failures: list[BaseException] = []
    hammer = threading.Thread(target=_hammer, args=(sidecar, rooms, done, hammered, failures), daemon=True)
    hammer.start()
    try:
        results = {request_id: sidecar.response(request_id) for request_id in turns}
    finally:
        done.set()
        hammer.join(HANG_GUARD_SECONDS)
    assert not failures, failures
    for request_id, room in turns.items():
        assert "result" in results[request_id], results[request_id]
        _check_turn(sidecar, room, results[request_id]["result"])
    assert fake.max_concurrent >= CONVERSATIONS * AGENTS_PER_TURN
    assert hammered and sidecar.unmatched == []
    tally.add("load: concurrent streams held", CONVERSATIONS * AGENTS_PER_TURN)
    tally.add("load: hammer requests answered during the load", 2 * len(hammered))
    tally.note("load: slowest list pair during the load", f"{max(hammered)} ms")
    assert sidecar.stop() == 0 and integrity_check(sidecar.data_dir) == "ok"


def _hammer(
    sidecar: Sidecar, rooms: list[Room], done: threading.Event, answered: list[int], failures: list[BaseException]
) -> None:
    try:
        while not done.is_set():
            room = rooms[len(answered) % len(rooms)]
            started = time.monotonic()
            sidecar.call("messages:list", {"conversationId": room.conversation_id})
            sidecar.call("conversations:list")
            answered.append(round((time.monotonic() - started) * 1000))  # ms for the pair, recorded only
    except BaseException as exc:  # reported by the test thread
        failures.append(exc)


def test_many_turns_in_a_row_lose_no_row_and_keep_the_sidecars_memory_bounded(
    spawn_sidecar: Callable[..., Sidecar], fake: FakeProvider, profile: Profile
) -> None:
    sidecar = spawn_sidecar()
    tag = uuid.uuid4().hex[:6]
    agents = [make_agent(sidecar, "Oa", fake_config(sidecar, fake, "openai"), f"m-words-8-{tag}"),
              make_agent(sidecar, "An", fake_config(sidecar, fake, "anthropic"), f"m-words-8-{tag}")]
    room: Room | None = None
    warm_rss = 0
    for turn in range(profile.soak_turns):
        if turn % SOAK_TURNS_PER_CONVERSATION == 0:  # fresh conversations keep each context (and request) small
            room = make_room(sidecar, agents, f"soak {turn}")
        assert room is not None
        result = ask(sidecar, room, f"Soak turn {turn}")
        assert result["successfulAgents"] == 2, result
        if turn + 1 == SOAK_WARMUP_TURNS:
            warm_rss = rss_kib(sidecar.proc.pid)
        sidecar.notifications.clear()  # the test client's own memory, not the sidecar's
    end_rss = rss_kib(sidecar.proc.pid)
    growth = (end_rss - warm_rss) / warm_rss
    tally.add("soak: turns", profile.soak_turns)
    tally.note("soak: sidecar RSS after warm-up → end", f"{warm_rss} KiB → {end_rss} KiB ({growth:+.1%})")
    for conversation in sidecar.call("conversations:list"):
        rows = sidecar.call("messages:list", {"conversationId": conversation["id"]})
        turns_here = min(SOAK_TURNS_PER_CONVERSATION, profile.soak_turns)
        assert len(rows) == 3 * turns_here and all(r["status"] == "complete" for r in rows)
    if profile.soak_asserts_rss:
        assert growth <= 0.10, f"RSS grew {growth:.1%} after warm-up"
    assert sidecar.stop() == 0 and integrity_check(sidecar.data_dir) == "ok"


# --- a client that stops reading ----------------------------------------------------------------------------------


class PausableSidecar(Sidecar):
    """A sidecar client whose stdout reader can be paused, so the pipe fills and the sidecar must hold back."""

    def __init__(self, data_dir: Path) -> None:
        self.reading = threading.Event()
        self.reading.set()
        super().__init__(data_dir)

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

    def bytes_in_pipe(self) -> int:
        assert self.proc.stdout is not None
        pending = fcntl.ioctl(self.proc.stdout.fileno(), FIONREAD, b"\0\0\0\0")
        return int.from_bytes(pending, "little")

    def pipe_is_filling(self) -> bool:
        """Half the pipe's capacity waits unread (page packing keeps a blocked pipe below its nominal size)."""
        assert self.proc.stdout is not None
        return self.bytes_in_pipe() >= fcntl.fcntl(self.proc.stdout.fileno(), F_GETPIPE_SZ) // 2


def _fake_open_requests(fake: FakeProvider) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{fake.port}/_admin/stats", timeout=10) as answer:
        return int(json.load(answer)["open"])


def _poll(condition: Callable[[], bool], what: str) -> None:
    """Wait for the sidecar's (or the fake's) observable state; the short sleep paces the check, the guard bounds it."""
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_client_that_stops_reading_loses_no_frame_and_the_sidecar_holds_back_instead_of_growing(
    tmp_path: Path, fake: FakeProvider, profile: Profile
) -> None:
    sidecar = PausableSidecar(tmp_path / "data")
    try:
        tag = uuid.uuid4().hex[:6]
        agents = [make_agent(sidecar, f"S{i}", fake_config(sidecar, fake, ("openai", "anthropic")[i % 2], f"s{i}"),
                             f"m-words-300-pace-4-{tag}") for i in range(AGENTS_PER_TURN)]
        room = make_room(sidecar, agents, "slow client")
        ask(sidecar, room, "Warm up")  # the SDKs are imported on first use: count them before, not during
        sidecar.call("messages:list", {"conversationId": room.conversation_id})
        before = rss_kib(sidecar.proc.pid)
        sidecar.reading.clear()
        turn = sidecar.request("processUserMessage", {"conversationId": room.conversation_id, "content": "Go"})
        lists = [sidecar.request("personalities:list") for _ in range(SLOW_CLIENT_REQUESTS)]
        _poll(sidecar.pipe_is_filling, "stdout's pipe to fill")
        _poll(lambda: _fake_open_requests(fake) == 0, "the fake to finish streaming")
        paused = rss_kib(sidecar.proc.pid)
        written_while_paused = len(sidecar.stdout_bytes) + sidecar.bytes_in_pipe()
        sidecar.reading.set()
        result = sidecar.response(turn)["result"]
        for request_id in lists:
            assert isinstance(sidecar.response(request_id)["result"], list)
        _check_turn(sidecar, room, result)
        growth_mib = (paused - before) / 1024
        rss_note = f"{before} KiB → {paused} KiB ({growth_mib:+.1f} MiB)"
        tally.note("slow client: sidecar RSS before → while blocked", rss_note)
        tally.add("slow client: frames delivered after the pause", len(parse_stdout(bytes(sidecar.stdout_bytes))))
        held_back = len(sidecar.stdout_bytes) - written_while_paused
        assert held_back > 0, "the sidecar wrote everything into a pipe nobody read: nothing pushed back"
        tally.note("slow client: bytes the sidecar held back while blocked", str(held_back))
        counts = responses_by_id(parse_stdout(bytes(sidecar.stdout_bytes)))
        assert all(counts[json.dumps(i)] == 1 for i in [turn, *lists])
        if profile.soak_asserts_rss:
            assert growth_mib <= 32, f"RSS grew {growth_mib:.1f} MiB while the client was not reading"
        assert sidecar.stop() == 0
    finally:
        if sidecar.proc.poll() is None:
            sidecar.proc.kill()
            sidecar.wait_exit()
