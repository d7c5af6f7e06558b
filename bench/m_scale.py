"""Scale: 20 conversations × 5 agents streaming at once (100 streams), with the event loop's lag measured.

Lag is measured twice: inside the sidecar by `bench.lagprobe` (a task that sleeps 10 ms again and again and
records how late it wakes), and from outside as the extra round-trip time of `ping`s sent during the load.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.fake import FakeServer
from bench.proc import Proc, sidecar
from bench.stats import Row, Summary, fmt
from bench.world import World

CONVERSATIONS = 20
AGENTS = 5
MODEL = "words-50-pace-20"  # ≈ 1.1 s per stream, a chunk every 20 ms: 5,000 chunks/s in all
PING_EVERY_S = 0.02  # pacing of the outside probe (load generation, not synchronisation)


def ping_rtts(proc: Proc, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        request_id, sent = proc.request("ping")
        answered, _ = proc.response(request_id)
        out.append((answered - sent) * 1000)
        stop.wait(PING_EVERY_S)


def measure(quick: bool) -> list[Row]:
    """Round 0 is the first turn on 100 new llm configs (each opens its SDK client); rounds 1.. are steady."""
    rounds = 2 if quick else 4
    rows: list[Row] = []
    with FakeServer() as fake, tempfile.TemporaryDirectory() as tmp:
        lag_file = Path(tmp) / "lag.json"
        proc = sidecar(Path(tmp) / "data", lag_probe=True, env={"BENCH_LAG_FILE": str(lag_file)})
        try:
            fake.record_chunks(False)
            world = World(proc, fake)
            # One llm config per agent, so the per-config limit (4 calls) does not serialise the streams.
            rooms = [world.room([(world.config(), f"{MODEL}-c{c}a{a}") for a in range(AGENTS)])
                     for c in range(CONVERSATIONS)]
            alone_room = world.room([(world.config(), MODEL)])
            world.turn(alone_room)  # opens its client
            sent_a, answered_a, _ = world.turn(alone_room)
            alone_ms = (answered_a - sent_a) * 1000
            idle: list[float] = []
            for _ in range(200):
                request_id, sent = proc.request("ping")
                answered, _ = proc.response(request_id)
                idle.append((answered - sent) * 1000)
            windows: list[tuple[float, float]] = []
            walls: list[float] = []
            pings: list[list[float]] = []
            results: list[dict[str, Any]] = []
            concurrency: list[int] = []
            for _ in range(rounds):
                fake.reset()
                loaded: list[float] = []
                stop = threading.Event()
                pinger = threading.Thread(target=ping_rtts, args=(proc, stop, loaded), daemon=True)
                pinger.start()
                started = time.monotonic()
                ids = [proc.request("processUserMessage", {"conversationId": r.conversation_id,
                                                           "content": "All together now"})[0] for r in rooms]
                answers = [proc.response(i) for i in ids]
                ended = max(t for t, _ in answers)
                stop.set()
                pinger.join()
                windows.append((started, ended))
                walls.append((ended - started) * 1000)
                pings.append(loaded)
                results.extend(a for _, a in answers)
                concurrency.append(fake.log()["max_concurrent"])
            lost = _lost_rows(world, rooms, rounds)
        finally:
            proc.close()
        samples: list[list[float]] = json.loads(lag_file.read_text()) if lag_file.exists() else []
    complete = sum(r["result"]["successfulAgents"] for r in results if "result" in r)
    expected = CONVERSATIONS * AGENTS * rounds

    def lag_in(first: int, last: int) -> Summary:
        return Summary.of([lag for t, lag in samples if any(windows[i][0] <= t <= windows[i][1]
                                                             for i in range(first, last))])

    steady_wall = Summary.of(walls[1:])
    rows.append(Row(f"scale: {CONVERSATIONS} conversations × {AGENTS} agents at once, agents complete",
                    complete, "", f"all {expected}", complete == expected and lost == 0,
                    f"rows lost or wrong: {lost}; streams open at once (max per round): {concurrency}",
                    ideal=f"steady wall p50 {fmt(steady_wall.p50, 'ms')} vs one stream alone {fmt(alone_ms, 'ms')} "
                          f"({fmt(steady_wall.p50 / alone_ms, 'x')}); first round {fmt(walls[0], 'ms')}",
                    note=f"{rounds} rounds; round 1 opens 100 SDK clients"))
    for label, (first, last) in (("steady rounds", (1, rounds)), ("first round, 100 new llm configs", (0, 1))):
        lag = lag_in(first, last)
        rows.append(Row(f"scale: event-loop lag inside the sidecar (10 ms probe), {label}", lag.p99, "ms",
                        "p99 ≤ 50 ms", lag.p99 <= 50,
                        f"p50 {fmt(lag.p50, 'ms')}, p95 {fmt(lag.p95, 'ms')}, max {fmt(lag.max, 'ms')}, n={lag.n}",
                        note="headline is p99"))
    ping_idle = Summary.of(idle)
    ping_loaded = Summary.of([x for p in pings[1:] for x in p])
    rows.append(Row("scale: ping round trip during the 100 streams, steady rounds (outside view of lag)",
                    ping_loaded.p99, "ms", "p99 ≤ 50 ms", ping_loaded.p99 <= 50,
                    f"p50 {fmt(ping_loaded.p50, 'ms')}, p95 {fmt(ping_loaded.p95, 'ms')}, max "
                    f"{fmt(ping_loaded.max, 'ms')}, n={ping_loaded.n}",
                    ideal=f"idle: p50 {fmt(ping_idle.p50, 'ms')}, p99 {fmt(ping_idle.p99, 'ms')}",
                    note="headline is p99; includes the client's own thread hand-off"))
    return rows


def _lost_rows(world: World, rooms: list[Any], rounds: int) -> int:
    """Rows missing or not complete: every conversation must hold rounds × (1 user + 5 complete replies)."""
    lost = 0
    for room in rooms:
        rows = world.proc.call("messages:list", {"conversationId": room.conversation_id})
        users = [r for r in rows if r["role"] == "user"]
        replies = [r for r in rows if r["role"] == "agent" and r["status"] == "complete" and r["content"]]
        lost += (rounds - len(users)) + (rounds * AGENTS - len(replies))
    return lost


if __name__ == "__main__":
    import sys

    for row in measure("--quick" in sys.argv):
        print(row.measure, row.value, row.spread, row.ideal, row.note)
