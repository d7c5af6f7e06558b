"""Cold start: spawn → `initialize` answered, from source and as the frozen one-folder binary.

Also spawn → the first data answer (`llmConfigs:list`, sent once `initialize` is answered), because the
sidecar answers `initialize` before its database is open: that row shows what the open still costs.

From source, our packages are byte-compiled first (`compileall`): a user's first run writes `__pycache__`,
every later start reads it. Without this, an environment with PYTHONDONTWRITEBYTECODE=1 (like the build
machine) recompiles `sidecar/` and `storage/` on every start (~90 ms) and the figure is of no start a user sees.

Against two floors run the same way (spawn → `initialize` answered; bench/floor_*.py, byte-compiled too): a
stdlib-only loop (what any Python stdio server costs) and jsonrpcserver + anyio with nothing of ours (what our
chosen libraries cost). Target: ours ≤ 1.1× the latter, from source and frozen. The starts are interleaved
(one of each variant per round), so a swing of the host's speed hits every variant alike.
"""

from __future__ import annotations

import compileall
import json
import math
import tempfile
from pathlib import Path
from typing import NamedTuple

from bench import proc
from bench.peers import FLOOR_JSONRPCSERVER, FLOOR_MODULES, FLOOR_STDLIB
from bench.proc import FROZEN, Proc, encode, sidecar
from bench.stats import Row, Summary, fmt, percentile, spread_ms

TARGET_MS = 300.0
TARGET_RATIO = 1.1  # ours ÷ bare jsonrpcserver + anyio (issue #14 point 5)
PACKAGES = ("sidecar", "storage", "schema")
FLOORS = {
    "stdlib floor (bench/floor_stdlib.py)": FLOOR_STDLIB,
    "bare jsonrpcserver+anyio (bench/floor_jsonrpcserver.py)": FLOOR_JSONRPCSERVER,
}
STDLIB, BARE = FLOORS


def byte_compile(root: Path) -> None:
    """What the first start of a normal install leaves behind: a `.pyc` for each of our modules."""
    for package in PACKAGES:
        compileall.compile_dir(str(root / package), quiet=1)
    for module in ("bench/__init__.py", *FLOOR_MODULES):  # the floors' own start, compiled alike
        compileall.compile_file(str(proc.REPO / module), quiet=1)


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


def floor_start(command: list[str]) -> Start:
    """Spawn → `initialize` answered for a floor server (it has no database, so `listed` is nan)."""
    child = Proc(command, reader=False)
    try:
        message = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"clientInfo": {"name": "bench"}}}
        child.write(encode(message, "ndjson"))
        initialized, frames = child.read_frames()
        cpu, queued = main_thread_schedstat(child.proc.pid)
        if "result" not in json.loads(frames[-1]):
            raise RuntimeError(f"initialize failed: {frames[-1]!r}")
        return Start((initialized - child.spawned_at) * 1000, math.nan, cpu, queued)
    finally:
        child.close(10)


def ratio_row(label: str, ours: list[float], floors: dict[str, list[float]]) -> Row:
    """Ours ÷ the bare jsonrpcserver + anyio server (p50 over p50), and the same per round (paired starts)."""
    ratio = percentile(ours, 50) / percentile(floors[BARE], 50)
    paired = Summary.of([a / b for a, b in zip(ours, floors[BARE], strict=True)])
    to_stdlib = percentile(ours, 50) / percentile(floors[STDLIB], 50)
    return Row(f"cold start, {label} ÷ bare jsonrpcserver+anyio", ratio, "x", f"≤ {TARGET_RATIO:g}×",
               ratio <= TARGET_RATIO, f"per round (paired starts): {spread_ms(paired, 'x')}",
               ideal=f"{fmt(to_stdlib, 'x')} the stdlib floor")


def measure(quick: bool) -> list[Row]:
    repeats = 5 if quick else 40  # the host's speed swings by ±20 % between rounds: 15 could not resolve 5 %
    rows: list[Row] = []
    variants = [("python -m sidecar", False)] + ([("frozen binary", True)] if FROZEN.exists() else [])
    byte_compile(proc.SIDECAR_ROOT)
    ours: dict[str, list[Start]] = {label: [] for label, _ in variants}
    firsts: dict[str, float] = {}
    floors: dict[str, list[Start]] = {name: [] for name in FLOORS}
    with tempfile.TemporaryDirectory() as tmp:
        data_dirs = {label: Path(tmp) / label.replace(" ", "-") for label, _ in variants}
        for label, frozen in variants:
            firsts[label] = one_start(data_dirs[label], frozen).initialized  # creates, migrates, seeds
        for command in FLOORS.values():
            floor_start(command)  # unmeasured, like our first start: page cache and .pyc warm
        for _ in range(repeats):
            for label, frozen in variants:
                ours[label].append(one_start(data_dirs[label], frozen))
            for name, command in FLOORS.items():
                floors[name].append(floor_start(command))
    floor_ms = {name: [start.initialized for start in starts] for name, starts in floors.items()}
    for label, frozen in variants:
        starts = ours[label]
        s = Summary.of([start.initialized for start in starts])
        listed = Summary.of([start.listed for start in starts])
        # Run-queue wait shows the load; the on-CPU time, the work (it also swings with the host's CPU speed).
        cpu = Summary.of([start.cpu for start in starts]).p50
        queued = Summary.of([start.queued for start in starts]).p50
        compiled = "" if frozen else "; our packages byte-compiled first, as after a first run"
        note = (f"first start (new database): {firsts[label]:.0f} ms; main thread until answered: p50 {cpu:.0f} ms "
                f"on a CPU, {queued:.0f} ms waiting for one{compiled}")
        ratios = "; ".join(f"{fmt(s.p50 / percentile(ms, 50), 'x')} the {name.split(' (')[0]}"
                           for name, ms in floor_ms.items())
        rows.append(Row(f"cold start, {label} (existing data dir)", s.p50, "ms", f"≤ {TARGET_MS:g} ms",
                        s.p50 <= TARGET_MS, spread_ms(s), ideal=ratios, note=note))
        rows.append(Row(f"cold start, {label}: spawn → first llmConfigs:list answered", listed.p50, "ms", "", None,
                        spread_ms(listed), note="sent when initialize is answered; waits for the database open"))
        rows.append(ratio_row(label, [start.initialized for start in starts], floor_ms))
    for name, starts in floors.items():
        s = Summary.of(floor_ms[name])
        cpu = Summary.of([start.cpu for start in starts]).p50
        queued = Summary.of([start.queued for start in starts]).p50
        rows.append(Row(f"cold start, {name}", s.p50, "ms", "", None, spread_ms(s),
                        note=f"main thread until answered: p50 {cpu:.0f} ms on a CPU, {queued:.0f} ms waiting for one"))
    return rows
