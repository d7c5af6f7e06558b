"""Auto mode: the gap between one speaker's last token and the next speaker's provider request (CONTRACT §5b).

Three agents on one fake OpenAI config, a conversation in auto mode (sequential, `maxMessages` 12), one
`processUserMessage` per run. Each agent has its own model name, so the fake's log tells whose chunks and
requests are whose: a gap is the next speaker's request read by the fake minus the previous speaker's last text
chunk written to the socket (one clock, `time.monotonic()`, system-wide on Linux). The sidecar in between saves
the reply as complete, sends its terminal update, picks the next speaker, reads the history and builds the body.
Measured with `delayMs` 0 and 100 (the wait itself is subtracted: the target is the overhead on top of it).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.fake import FakeServer
from bench.proc import sidecar
from bench.stats import Row, Summary, fmt, spread_ms
from bench.world import World

SPEAKERS = 3
MAX_MESSAGES = 12
TARGET_MS = 20.0


def _gaps(log: dict[str, Any], order: list[str]) -> list[float]:
    """Per hand-over: next request time − the previous speaker's last chunk time (ms), in request order."""
    requests = sorted(log["requests"], key=lambda r: r["t"])
    gaps = []
    for previous, current in zip(requests, requests[1:], strict=False):
        chunks = [c["t"] for c in log["chunks"] if c["model"] == previous["model"] and previous["t"] < c["t"]
                  <= current["t"]]
        if chunks:
            gaps.append((current["t"] - max(chunks)) * 1000)
    assert {r["model"] for r in requests} <= set(order), "a request from an unknown model"
    return gaps


def _run(fake: FakeServer, data_dir: Path, delay_ms: int, runs: int) -> list[float]:
    gaps: list[float] = []
    with sidecar(data_dir) as launched:
        world = World(launched, fake)
        config = world.config("openai")
        # No `pace`: the fake would also wait it before each of the three events that end an OpenAI stream (finish,
        # usage, [DONE]), ~6 ms a real provider does not add after the last token, charged here to the sidecar.
        models = [f"gpt-words-12-auto{i}" for i in range(SPEAKERS)]
        room = world.room([(config, model) for model in models])
        launched.call("conversations:update", {"id": room.conversation_id, "chatMode": "auto", "autoSettings": {
            "maxMessages": MAX_MESSAGES, "delayMs": delay_ms, "style": "sequential"}})
        for _ in range(runs):
            fake.reset()
            _, _, result = world.turn(room)
            if result["auto"]["stopReason"] != "max_messages":
                raise RuntimeError(f"the auto run stopped early: {result['auto']}")
            gaps.extend(gap - delay_ms for gap in _gaps(fake.log(), models))
    return gaps


def measure(quick: bool) -> list[Row]:
    runs = 3 if quick else 8
    rows = []
    with FakeServer() as fake:
        for delay_ms in (0, 100):
            with tempfile.TemporaryDirectory() as tmp:
                gaps = _run(fake, Path(tmp), delay_ms, runs)
            s = Summary.of(gaps)
            rows.append(Row(
                f"auto mode: previous speaker's last token → next speaker's request, minus delayMs ({delay_ms} ms)",
                s.p50, "ms", f"≤ {TARGET_MS:g} ms", s.p95 <= TARGET_MS, spread_ms(s),
                note=f"headline p50; p95 {fmt(s.p95, 'ms')} is what 'met' judges; {SPEAKERS} agents, "
                     f"{MAX_MESSAGES} replies a run"))
    return rows
