"""`ping` over stdio: round-trip latency (one at a time) and pipelined throughput, ours against two peers
(pygls, the MCP SDK) and two floors (a stdlib-only loop; bare jsonrpcserver + anyio, see bench/floor_*.py).

The same client measures every server: the round trip is written and read on one thread (no hand-off in the
figure); the throughput run writes N requests from a writer thread while the main thread reads the N answers.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.peers import FLOOR_JSONRPCSERVER, FLOOR_STDLIB
from bench.proc import Proc, encode, sidecar
from bench.stats import Row, Summary, fmt, percentile, spread_ms

Spawn = Callable[[], Proc]


def ping_frame(request_id: int, framing: str) -> bytes:
    return encode({"jsonrpc": "2.0", "id": request_id, "method": "ping", "params": {}}, framing)


def latency(proc: Proc, n: int, warmup: int = 200) -> list[float]:
    samples = []
    for i in range(warmup + n):
        sent, answered = proc.roundtrip(ping_frame(i + 1, proc.framing))
        if i >= warmup:
            samples.append((answered - sent) * 1000)
    return samples


def throughput(proc: Proc, n: int) -> float:
    """Requests per second from the first write to the last answer, all N pipelined."""
    frames = [ping_frame(1_000_000 + i, proc.framing) for i in range(n)]
    blob = b"".join(frames)
    started = time.monotonic()
    writer = threading.Thread(target=proc.write, args=(blob,), daemon=True)
    writer.start()
    answers = 0
    while answers < n:
        _, got = proc.read_frames()
        answers += len(got)
    elapsed = time.monotonic() - started
    writer.join()
    return n / elapsed


def run_server(spawn: Spawn, n_latency: int, n_throughput: int, rounds: int) -> dict[str, Any]:
    proc = spawn()
    try:
        lat = latency(proc, n_latency)
        rates = [throughput(proc, n_throughput) for _ in range(rounds)]
    finally:
        proc.close(10)
    return {"latency": lat, "throughput": rates}


def servers(data_dir: Path) -> dict[str, tuple[Spawn, str]]:
    peer = [sys.executable, "-m", "bench.peers"]
    return {
        "chat-sidecar (NDJSON)": (lambda: sidecar(data_dir, reader=False), "ndjson"),
        "chat-sidecar (LSP framing)": (lambda: sidecar(data_dir, reader=False, framing="lsp"), "lsp"),
        "pygls JsonRPCServer (LSP framing)": (lambda: Proc([*peer, "pygls"], framing="lsp", reader=False), "lsp"),
        "MCP python-sdk stdio (NDJSON)": (lambda: Proc([*peer, "mcp"], reader=False), "ndjson"),
        # The floors (bench/floor_*.py): the standard library alone, and our chosen libraries with nothing of ours.
        "stdlib-floor stdio loop (NDJSON)": (lambda: Proc(FLOOR_STDLIB, reader=False), "ndjson"),
        "jsonrpcserver+anyio bare (NDJSON)": (lambda: Proc(FLOOR_JSONRPCSERVER, reader=False), "ndjson"),
    }


def measure(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    n_latency, n_throughput, rounds = (500, 5000, 3) if quick else (3000, 20000, 5)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (spawn, _) in servers(Path(tmp)).items():
            results[name] = run_server(spawn, n_latency, n_throughput, rounds)
    rows: list[Row] = []
    ours = results["chat-sidecar (NDJSON)"]
    ours_lat, ours_rate = Summary.of(ours["latency"]), percentile(ours["throughput"], 50)
    peers = {k: v for k, v in results.items() if not k.startswith("chat-sidecar")}
    for name, data in results.items():
        lat = Summary.of(data["latency"])
        rate = Summary.of(data["throughput"])
        is_ours = name.startswith("chat-sidecar")
        if is_ours:
            ratios = "; ".join(
                f"{fmt(lat.p50 / Summary.of(p['latency']).p50, 'x')} of {k.split(' ')[0]}'s latency, "
                f"{fmt(rate.p50 / percentile(p['throughput'], 50), 'x')} its throughput"
                for k, p in peers.items()
            )
        else:
            ratios = (f"ours/theirs: latency {fmt(ours_lat.p50 / lat.p50, 'x')}, "
                      f"throughput {fmt(ours_rate / rate.p50, 'x')}")
        rows.append(Row(f"ping round trip — {name}", lat.p50, "ms", "p50 ≤ 0.5 ms" if is_ours else "",
                        lat.p50 <= 0.5 if is_ours else None, spread_ms(lat), ideal=ratios))
        rows.append(Row(f"ping pipelined — {name}", rate.p50, "req/s", "≥ 5,000 req/s" if is_ours else "",
                        rate.p50 >= 5000 if is_ours else None,
                        f"min–max {rate.min:,.0f}–{rate.max:,.0f}, n={rate.n} runs of {n_throughput:,}"))
    return rows, {k: {"latency": Summary.of(v["latency"]).__dict__, "throughput": v["throughput"]}
                  for k, v in results.items()}


if __name__ == "__main__":
    rows, raw = measure("--quick" in sys.argv)
    for row in rows:
        print(row.measure, fmt(row.value, row.unit), row.spread, row.ideal)
    print(json.dumps(raw)[:0])
