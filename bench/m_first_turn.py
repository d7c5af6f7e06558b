"""The first turn after launch, against a warm turn in the same process, and ping while the sidecar warms up.

Each run spawns a sidecar on a data dir that already holds 2 OpenAI and 2 Anthropic llm configs (on the fake
server) and a conversation with one agent on each; `initialize`, then the keys (`llmConfigs:setApiKey`, in
memory: the bench uses the memory secret store), then pings every 20 ms for 2 s (the user reading the window;
the sidecar loads the chat engine and the SDKs meanwhile), then `processUserMessage`. Measured: message written →
the 4th provider request read by the fake, for that first turn and for the next one (warm); and the pings'
round trips over those 2 s (through the client's reader thread, so its hand-off is in the figure).

A diagnostic row repeats the first/warm pair in a sidecar that is given until its warm-up has finished (its debug
log line) instead of 2 s: on a loaded machine the warm-up can take longer than 2 s, and then the first row measures
the warm-up's length, not what it leaves to the first turn.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench import proc
from bench.fake import FakeServer
from bench.m_cold import byte_compile
from bench.proc import API_KEY, Proc, sidecar
from bench.stats import Row, Summary, fmt, spread_ms
from bench.world import Room, World

PROVIDERS = ("openai", "openai", "anthropic", "anthropic")
IDLE_S = 2.0
PING_EVERY_S = 0.02
WARMED_UP = '"msg": "warmed up"'  # sidecar/warmup.py's debug line when it is done


def _prepare(fake: FakeServer, data_dir: Path) -> tuple[list[str], Room]:
    with sidecar(data_dir) as first:
        world = World(first, fake)
        configs = [world.config(provider) for provider in PROVIDERS]
        room = world.room([(c, f"ok-first{i}") for i, c in enumerate(configs)])
    return configs, room


def _pings_for(launched: Proc, seconds: float) -> list[float]:
    """Round trips (ms) of pings sent every PING_EVERY_S for `seconds`; load generation, not synchronisation."""
    samples, end = [], time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        request_id, sent = launched.request("ping")
        answered, _ = launched.response(request_id)
        samples.append((answered - sent) * 1000)
        time.sleep(max(0.0, now + PING_EVERY_S - time.monotonic()))
    return samples


def _to_last_request(world: World, room: Room) -> float:
    """processUserMessage written → the last agent's provider request read by the fake (ms)."""
    world.fake.reset()
    sent, _, result = world.turn(room)
    times = sorted(r["t"] for r in world.fake.log()["requests"])
    world.forget_turn(result)
    return (times[len(PROVIDERS) - 1] - sent) * 1000


def _after_warm_up(fake: FakeServer, data_dir: Path, configs: list[str], room: Room) -> tuple[float, float]:
    """(first, warm) turn of a sidecar whose warm-up has finished: what the warm-up leaves to the first turn, apart
    from how long the warm-up itself takes on this machine. The end of the warm-up is its debug log line."""
    with sidecar(data_dir, log_level="debug") as launched:
        launched.call("initialize", {"clientInfo": {"name": "bench"}})
        for config_id in configs:
            launched.call("llmConfigs:setApiKey", {"id": config_id, "apiKey": API_KEY, "persist": False})
        launched.wait_stderr(WARMED_UP)
        world = World(launched, fake)
        return _to_last_request(world, room), _to_last_request(world, room)


def measure(quick: bool) -> list[Row]:
    runs = 3 if quick else 7
    byte_compile(proc.SIDECAR_ROOT)
    first, warm, pings, settled_first, settled_warm = [], [], [], [], []
    with FakeServer() as fake, tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        configs, room = _prepare(fake, data_dir)
        for _ in range(runs):
            with sidecar(data_dir) as launched:
                launched.call("initialize", {"clientInfo": {"name": "bench"}})
                for config_id in configs:
                    launched.call("llmConfigs:setApiKey", {"id": config_id, "apiKey": API_KEY, "persist": False})
                pings.extend(_pings_for(launched, IDLE_S))
                world = World(launched, fake)
                first.append(_to_last_request(world, room))
                warm.append(_to_last_request(world, room))
            one, two = _after_warm_up(fake, data_dir, configs, room)
            settled_first.append(one)
            settled_warm.append(two)
    f, w, p = Summary.of(first), Summary.of(warm), Summary.of(pings)
    sf, sw = Summary.of(settled_first), Summary.of(settled_warm)
    ratio = f.p50 / w.p50
    return [
        Row("first turn after launch: message → 4th provider request (2 OpenAI + 2 Anthropic configs, 2 s idle)",
            f.p50, "ms", "p50 ≤ 100 ms and ≤ 3× warm", f.p50 <= 100 and ratio <= 3, spread_ms(f),
            ideal=f"warm turn, same process: p50 {fmt(w.p50, 'ms')} ({spread_ms(w)}); first / warm {ratio:.2f} x",
            extra={"warm_p50_ms": w.p50, "ratio": ratio}),
        Row("first turn after launch: ping round trip during the 2 s after initialize (warm-up)", p.p99, "ms",
            "p99 ≤ 20 ms", p.p99 <= 20, spread_ms(p), note=f"headline is p99; p50 {fmt(p.p50, 'ms')}"),
        Row("first turn once the warm-up has finished (diagnostic: what it leaves to the first turn)", sf.p50, "ms",
            "", None, spread_ms(sf),
            ideal=f"warm turn, same process: p50 {fmt(sw.p50, 'ms')} ({spread_ms(sw)}); first / warm "
                  f"{sf.p50 / sw.p50:.2f} x",
            note="waits for the warm-up's debug log line instead of 2 s; the sidecar logs at debug level",
            extra={"warm_p50_ms": sw.p50, "ratio": sf.p50 / sw.p50}),
    ]
