"""Memory (RSS): idle, after turns with both SDKs loaded, and the growth over many more turns of 5 agents."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.fake import FakeServer
from bench.proc import sidecar
from bench.stats import Row, Summary
from bench.world import World

IN_FLIGHT = 4  # turns of different conversations kept going at once, to get through them sooner


def idle_rss(repeats: int) -> list[float]:
    values = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            proc = sidecar(Path(tmp))
            try:
                proc.call("initialize", {"clientInfo": {"name": "bench"}})
                proc.call("conversations:list")
                values.append(proc.rss_mb())
            finally:
                proc.close()
    return values


def measure(quick: bool) -> list[Row]:
    more_turns = 200 if quick else 1000
    idle = Summary.of(idle_rss(3))
    rows = [Row("memory: idle RSS (after initialize)", idle.p50, "MB", "≤ 60 MB", idle.p50 <= 60,
                f"min–max {idle.min:.1f}–{idle.max:.1f} MB, n={idle.n} processes")]
    with FakeServer() as fake, tempfile.TemporaryDirectory() as tmp:
        proc = sidecar(Path(tmp))
        proc.keep_notifications = False
        try:
            fake.record_chunks(False)
            world = World(proc, fake)
            configs = [world.config("openai") for _ in range(3)] + [world.config("anthropic") for _ in range(2)]
            rooms = [world.room([(c, f"words-30-r{r}a{i}") for i, c in enumerate(configs)]) for r in range(20)]
            for room in rooms[:4]:
                for _ in range(5):
                    world.turn(room)
            warm = proc.rss_mb()
            rows.append(Row("memory: RSS after turns, both SDKs loaded (20 turns × 5 agents)", warm, "MB", "≤ 150 MB",
                            warm <= 150, "one process"))
            trace = [warm]
            done = 0
            pending: list[tuple[int, object]] = []
            while done < more_turns:
                while len(pending) < IN_FLIGHT and done + len(pending) < more_turns:
                    room = rooms[(done + len(pending)) % len(rooms)]
                    request_id, _ = proc.request("processUserMessage", {"conversationId": room.conversation_id,
                                                                         "content": "And what comes next?"})
                    pending.append((request_id, room))
                request_id, _ = pending.pop(0)
                _, response = proc.response(request_id)
                if "error" in response or response["result"]["failedAgents"]:
                    raise RuntimeError(f"turn failed: {response}")
                done += 1
                if done % 100 == 0:
                    trace.append(proc.rss_mb())
                    fake.reset()  # the fake keeps every request body: keep its memory flat
            final = proc.rss_mb()
            growth = (final - warm) / warm * 100
            rows.append(Row(f"memory: growth over {more_turns:,} more turns of 5 agents", growth, "%", "≤ 10 %",
                            growth <= 10, f"{warm:.1f} → {final:.1f} MB; every 100 turns: "
                            + ", ".join(f"{v:.0f}" for v in trace),
                            note=f"{more_turns * 5:,} agent replies over 20 conversations"))
        finally:
            proc.close()
    return rows


if __name__ == "__main__":
    import sys

    for row in measure("--quick" in sys.argv):
        print(row.measure, row.value, row.spread, row.note)
