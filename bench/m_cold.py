"""Cold start: spawn → `initialize` answered, from source and as the frozen one-folder binary."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.proc import FROZEN, encode, sidecar
from bench.stats import Row, Summary, spread_ms

TARGET_MS = 300.0


def one_start(data_dir: Path, frozen: bool) -> float:
    proc = sidecar(data_dir, frozen=frozen, reader=False)
    try:
        message = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"clientInfo": {"name": "bench"}}}
        proc.write(encode(message, "ndjson"))
        answered, _ = proc.read_frames()
        return (answered - proc.spawned_at) * 1000
    finally:
        proc.close(10)


def measure(quick: bool) -> list[Row]:
    repeats = 5 if quick else 15
    rows: list[Row] = []
    variants = [("python -m sidecar", False)] + ([("frozen binary", True)] if FROZEN.exists() else [])
    for label, frozen in variants:
        with tempfile.TemporaryDirectory() as tmp:
            first = one_start(Path(tmp), frozen)  # creates, migrates and seeds the database
            times = [one_start(Path(tmp), frozen) for _ in range(repeats)]
        s = Summary.of(times)
        rows.append(Row(f"cold start, {label} (existing data dir)", s.p50, "ms", f"≤ {TARGET_MS:g} ms",
                        s.p50 <= TARGET_MS, spread_ms(s), note=f"first start (new database): {first:.0f} ms"))
    return rows
