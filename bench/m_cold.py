"""Cold start: spawn → `initialize` answered, from source and as the frozen one-folder binary.

Also spawn → the first data answer (`llmConfigs:list`, sent once `initialize` is answered), because the
sidecar answers `initialize` before its database is open: that row shows what the open still costs.

From source, our packages are byte-compiled first (`compileall`): a user's first run writes `__pycache__`,
every later start reads it. Without this, an environment with PYTHONDONTWRITEBYTECODE=1 (like the build
machine) recompiles `sidecar/` and `storage/` on every start (~90 ms) and the figure is of no start a user sees.
"""

from __future__ import annotations

import compileall
import json
import math
import tempfile
from pathlib import Path
from typing import NamedTuple

from bench import proc
from bench.proc import FROZEN, encode, sidecar
from bench.stats import Row, Summary, spread_ms

TARGET_MS = 300.0
PACKAGES = ("sidecar", "storage", "schema")


def byte_compile(root: Path) -> None:
    """What the first start of a normal install leaves behind: a `.pyc` for each of our modules."""
    for package in PACKAGES:
        compileall.compile_dir(str(root / package), quiet=1)


class Start(NamedTuple):
    initialized: float  # spawn → `initialize` answered, ms
    listed: float  # spawn → the first `llmConfigs:list` answered, ms
    cpu: float  # the main thread's time on a CPU until `initialize` was answered, ms (nan off Linux)
    queued: float  # its time runnable but waiting for a CPU (the machine's load), ms


def main_thread_schedstat(pid: int) -> tuple[float, float]:
    """(on-CPU ms, run-queue wait ms) of a process's main thread so far, from /proc (Linux)."""
    try:
        on_cpu, waiting, _ = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return math.nan, math.nan
    return int(on_cpu) / 1e6, int(waiting) / 1e6


def one_start(data_dir: Path, frozen: bool) -> Start:
    child = sidecar(data_dir, frozen=frozen, reader=False)
    try:
        message = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"clientInfo": {"name": "bench"}}}
        child.write(encode(message, "ndjson"))
        initialized, _ = child.read_frames()
        cpu, queued = main_thread_schedstat(child.proc.pid)
        child.write(encode({"jsonrpc": "2.0", "id": 2, "method": "llmConfigs:list"}, "ndjson"))
        listed, frames = child.read_frames()
        if "result" not in json.loads(frames[-1]):
            raise RuntimeError(f"llmConfigs:list failed: {frames[-1]!r}")
        return Start((initialized - child.spawned_at) * 1000, (listed - child.spawned_at) * 1000, cpu, queued)
    finally:
        child.close(10)


def measure(quick: bool) -> list[Row]:
    repeats = 5 if quick else 15
    rows: list[Row] = []
    variants = [("python -m sidecar", False)] + ([("frozen binary", True)] if FROZEN.exists() else [])
    byte_compile(proc.SIDECAR_ROOT)
    for label, frozen in variants:
        with tempfile.TemporaryDirectory() as tmp:
            first = one_start(Path(tmp), frozen).initialized  # creates, migrates and seeds the database
            starts = [one_start(Path(tmp), frozen) for _ in range(repeats)]
        s = Summary.of([start.initialized for start in starts])
        listed = Summary.of([start.listed for start in starts])
        # Run-queue wait shows the load; the on-CPU time, the work (it also swings with the host's CPU speed).
        cpu = Summary.of([start.cpu for start in starts]).p50
        queued = Summary.of([start.queued for start in starts]).p50
        compiled = "" if frozen else "; our packages byte-compiled first, as after a first run"
        note = (f"first start (new database): {first:.0f} ms; main thread until answered: p50 {cpu:.0f} ms on a CPU, "
                f"{queued:.0f} ms waiting for one{compiled}")
        rows.append(Row(f"cold start, {label} (existing data dir)", s.p50, "ms", f"≤ {TARGET_MS:g} ms",
                        s.p50 <= TARGET_MS, spread_ms(s), note=note))
        rows.append(Row(f"cold start, {label}: spawn → first llmConfigs:list answered", listed.p50, "ms", "", None,
                        spread_ms(listed), note="sent when initialize is answered; waits for the database open"))
    return rows
