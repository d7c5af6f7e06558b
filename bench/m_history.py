"""Long histories: fan-out and `buildAgentContext` over 100, 10,000 and 100,000 stored messages (issue #12).

One data dir holds three conversations, each with the same 5 agents (one llm config each, on the fake server, models
the catalogue does not know, so each agent gets the default 8,192-token window). A first sidecar makes the configs,
agents and conversations through its own methods and stops; the bench then writes each conversation's history
straight into the database (`bench/history_seed.py`: one transaction, a few seconds for 100,000 rows); a second
sidecar is started on that data dir and measured. Per size, after one unmeasured turn:
- fan-out: `processUserMessage` written → the 5th provider request read by the fake (each measured turn is deleted
  again, so the history keeps its size), as `bench/m_turns.py` measures it;
- `buildAgentContext` for the first agent, the upcoming call over the whole history: request written → answer read.
The target (issue #12): the 100,000-message figures within 1.5× of the 100-message ones, i.e. a turn's cost set by
what fits in the budget, not by the length of the conversation. Each row repeats until it has its samples or its
time is up (a baseline that reads the whole history takes seconds a turn at 100,000 messages).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fake import FakeServer
from bench.history_seed import seed_history
from bench.m_turns import AGENTS, fan_out
from bench.proc import API_KEY, Proc, sidecar
from bench.stats import Row, Summary, fmt, spread_ms
from bench.world import Room, World

SIZES = (100, 10_000, 100_000)
TARGET_RATIO = 1.5


@dataclass(frozen=True)
class Budget:
    samples: int  # at most this many per row
    seconds: float  # and no more samples once this much time has gone (at least MIN_SAMPLES)


MIN_SAMPLES = 3
QUICK, FULL = Budget(7, 12.0), Budget(15, 25.0)


def _prepare(fake: FakeServer, data_dir: Path) -> tuple[list[str], dict[int, Room]]:
    """Configs, agents and one conversation per size, made by a sidecar that then stops; then the histories."""
    with sidecar(data_dir) as first:
        world = World(first, fake)
        configs = [world.config() for _ in range(AGENTS)]
        rooms = {size: world.room([(c, f"ok-hist{size}-{i}") for i, c in enumerate(configs)], f"history {size}")
                 for size in SIZES}
    for size, room in rooms.items():
        seed_history(data_dir, room.conversation_id, [member["id"] for member in room.members], size)
    return configs, rooms


def _repeat(sample: Any, budget: Budget) -> list[float]:
    samples: list[float] = []
    deadline = time.monotonic() + budget.seconds
    while len(samples) < budget.samples and (len(samples) < MIN_SAMPLES or time.monotonic() < deadline):
        samples.append(sample())
    return samples


def _context_ms(proc: Proc, room: Room) -> float:
    """`buildAgentContext` of the first agent (the upcoming call): request written → answer read (ms)."""
    request_id, sent = proc.request("buildAgentContext", {"conversationId": room.conversation_id,
                                                          "agentId": room.members[0]["id"]})
    answered, response = proc.response(request_id)
    if "error" in response:
        raise RuntimeError(f"buildAgentContext failed: {response['error']}")
    return (answered - sent) * 1000


def _context_shape(proc: Proc, room: Room) -> str:
    """What the upcoming call would carry: its message count, and the budget's kept/dropped counts when reported."""
    context = proc.call("buildAgentContext", {"conversationId": room.conversation_id,
                                              "agentId": room.members[0]["id"]})
    shape = f"context of {len(context['messages']):,} provider messages"
    budget = context.get("budget")
    if isinstance(budget, dict):
        shape += f"; budget kept {budget.get('keptCount')} / dropped {budget.get('droppedCount')}"
    else:
        shape += "; no budget reported (whole history)"
    return shape


def _rows(kind: str, figures: dict[int, Summary], shapes: dict[int, str]) -> list[Row]:
    small = figures[SIZES[0]]
    rows = []
    for size, s in figures.items():
        ratio = s.p50 / small.p50
        last = size == SIZES[-1]
        rows.append(Row(
            f"history: {kind}, {size:,} stored messages", s.p50, "ms",
            f"100,000 / 100 ≤ {TARGET_RATIO:g}×" if last else "", ratio <= TARGET_RATIO if last else None,
            spread_ms(s), ideal="" if size == SIZES[0] else f"{size:,} / 100 messages: {ratio:.2f} x",
            note=shapes[size], extra={"messages": size, "ratio_to_100": ratio},
        ))
    return rows


def measure(quick: bool) -> list[Row]:
    budget = QUICK if quick else FULL
    fan: dict[int, Summary] = {}
    build: dict[int, Summary] = {}
    shapes: dict[int, str] = {}
    with FakeServer() as fake, tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        configs, rooms = _prepare(fake, data_dir)
        fake.record_chunks(False)
        with sidecar(data_dir) as proc:
            for config_id in configs:  # the memory secret store forgot them with the first process
                proc.call("llmConfigs:setApiKey", {"id": config_id, "apiKey": API_KEY, "persist": False})
            world = World(proc, fake)
            proc.keep_notifications = False
            for size, room in rooms.items():
                world.forget_turn(world.turn(room)[2])  # unmeasured: SDK clients, this conversation's pages
                shapes[size] = _context_shape(proc, room)
                fan[size] = Summary.of(_repeat(lambda room=room: fan_out(world, room, 1)[0], budget))
                build[size] = Summary.of(_repeat(lambda room=room: _context_ms(proc, room), budget))
    return [*_rows("fan-out: request written → 5th provider request, 5 agents", fan, shapes),
            *_rows("buildAgentContext round trip (upcoming call)", build, shapes)]


if __name__ == "__main__":
    import sys

    for row in measure("--quick" in sys.argv):
        print(row.measure, fmt(row.value, row.unit), row.target, row.ok, row.spread, row.ideal, row.note)
