"""Turns against the fake server: fan-out latency, turn wall time against one agent alone, and streaming latency.

Agents on separate llm configs show the engine itself; agents sharing one config also meet the engine's
per-config limit (`CALLS_PER_LLM_CONFIG`), which is what a user with one API key gets.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.fake import FakeServer
from bench.proc import sidecar
from bench.stats import Row, Summary, fmt, spread_ms
from bench.world import Room, World

AGENTS = 5
HISTORY_TURNS = 17  # 17 × (1 user + 5 replies) = 102 messages
WALL_MODEL = "words-20-pace-45"  # 22 paced chunks × 45 ms ≈ 1.0 s for one agent alone


def fan_out(world: World, room: Room, repeats: int) -> list[float]:
    """processUserMessage written → the 5th provider request read by the fake server (ms)."""
    samples = []
    for _ in range(repeats):
        world.fake.reset()
        sent, _, result = world.turn(room)
        times = sorted(r["t"] for r in world.fake.log()["requests"])
        samples.append((times[AGENTS - 1] - sent) * 1000)
        world.forget_turn(result)
    return samples


def wall(world: World, room: Room, repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        sent, answered, result = world.turn(room)
        samples.append((answered - sent) * 1000)
        world.forget_turn(result)
    return samples


def streaming(world: World, room: Room, repeats: int) -> tuple[list[float], int]:
    """For each text chunk the fake wrote: the time until the `agent:update` delta that carries it was read."""
    latencies: list[float] = []
    deltas_seen = 0
    for _ in range(repeats):
        world.fake.reset()
        world.proc.notifications.clear()
        _, _, result = world.turn(room)
        chunks = world.fake.log()["chunks"]
        for member in room.members:
            model = room.models[member["id"]]
            sent = [(c["t"], c["text"]) for c in chunks if c["model"] == model]
            got = [(t, n["params"]["delta"]) for t, n in world.proc.notifications
                   if n["method"] == "agent:update" and n["params"]["conversationAgentId"] == member["id"]
                   and n["params"]["status"] == "streaming"]
            deltas_seen += len(got)
            if "".join(text for _, text in sent) != "".join(d for _, d in got):
                raise RuntimeError(f"streamed text differs for {model}")
            latencies.extend(_match(sent, got))
        world.forget_turn(result)
    return latencies, deltas_seen


def _match(sent: list[tuple[float, str]], got: list[tuple[float, str]]) -> list[float]:
    out, end, i, got_end = [], 0, 0, len(got[0][1]) if got else 0
    for t, text in sent:
        end += len(text)
        while got_end < end:
            i += 1
            got_end += len(got[i][1])
        out.append((got[i][0] - t) * 1000)
    return out


def measure(quick: bool) -> list[Row]:
    n_fan, n_wall, n_stream = (10, 3, 2) if quick else (40, 7, 5)
    rows: list[Row] = []
    with FakeServer() as fake, tempfile.TemporaryDirectory() as tmp:
        proc = sidecar(Path(tmp))
        try:
            world = World(proc, fake)
            own = [world.config() for _ in range(AGENTS)]
            shared = world.config()
            # Fan-out over a 102-message history (each measured turn is deleted again afterwards).
            for label, configs in (("own llm config each", own), ("one shared llm config", [shared] * AGENTS)):
                room = world.room([(c, f"ok-h{i}") for i, c in enumerate(configs)])
                for _ in range(HISTORY_TURNS):
                    world.turn(room)
                proc.notifications.clear()
                s = Summary.of(fan_out(world, room, n_fan))
                shared_cfg = configs[0] == configs[1]
                rows.append(Row(f"fan-out: request written → 5th provider request, 5 agents, {label}", s.p50, "ms",
                                "p50 ≤ 20 ms", s.p50 <= 20, spread_ms(s),
                                note="the 5th waits for a free slot (4 calls per config)" if shared_cfg else ""))
            # Turn wall time: one agent alone, then five.
            alone = Summary.of(wall(world, world.room([(own[0], WALL_MODEL)]), n_wall))
            for label, configs in (("own llm config each", own), ("one shared llm config", [shared] * AGENTS)):
                room = world.room([(c, f"{WALL_MODEL}-w{i}") for i, c in enumerate(configs)])
                s = Summary.of(wall(world, room, n_wall))
                ratio = s.p50 / alone.p50
                rows.append(Row(f"turn wall time, 5 agents × ~1 s, {label}", ratio, "x", "ratio ≤ 1.05",
                                ratio <= 1.05, f"turn {spread_ms(s)}",
                                ideal=f"one agent alone: p50 {fmt(alone.p50, 'ms')} ({spread_ms(alone)})",
                                extra={"turn_p50_ms": s.p50, "alone_p50_ms": alone.p50}))
            # Streaming: chunk written by the fake → delta read by the client.
            proc.notifications.clear()
            for pace, headline in ((20, True), (100, False)):
                room = world.room([(c, f"words-40-pace-{pace}-s{i}") for i, c in enumerate(own)])
                lat, deltas = streaming(world, room, n_stream)
                s = Summary.of(lat)
                rows.append(Row(f"streaming: chunk sent → delta read, 5 agents, chunks every {pace} ms", s.p50, "ms",
                                "p50 ≤ 55 ms" if headline else "(overhead)", s.p50 <= 55 if headline else None,
                                spread_ms(s), note=f"{deltas} deltas for {s.n} chunks"))
        finally:
            proc.close()
    return rows


def _debug(rows: list[Row]) -> None:
    for row in rows:
        print(row.measure, fmt(row.value, row.unit), row.spread, row.ideal, row.note)


if __name__ == "__main__":
    import sys

    _debug(measure("--quick" in sys.argv))


__all__: list[Any] = ["measure"]
