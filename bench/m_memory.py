"""Memory (RSS): idle, after turns with both SDKs loaded, and the growth from turn 1,000 to turn 5,000 (issue #14).

The long run: 5 agents (3 OpenAI + 2 Anthropic configs, so both SDKs are loaded) in each of 20 conversations,
4 turns of different conversations in flight; turns 1–1,000 are the warm-up, the row is the RSS growth from turn
1,000 to turn 5,000. `--quick` runs the same shape shorter (warm-up 250, growth to 1,250: the row says so).

`python -m bench.m_memory [--quick]` prints the rows; `python -m bench.m_memory --probe [--trace FRAMES]
[--turns N] [--every N] [--snapshots A,B]` runs the same workload on `bench.memprobe` and prints, every N turns,
RSS next to what the allocators and SQLite hold (and with `--trace`, the tracemalloc total); snapshots taken at
turns A and B are diffed, grouped by traceback. `--forget` deletes each turn's rows once answered (a history that
never grows: growth then is per-turn state, not longer conversations); `--root DIR` measures another source tree.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import proc as bench_proc
from bench.fake import FakeServer
from bench.memprobe import ProbeClient
from bench.proc import Proc, sidecar
from bench.stats import Row, Summary
from bench.world import Room, World

IN_FLIGHT = 4  # turns of different conversations kept going at once, to get through them sooner
CONVERSATIONS = 20
WARM_UP_TURNS, LAST_TURN = 1000, 5000  # the criterion: growth from turn 1,000 to turn 5,000
QUICK_WARM_UP_TURNS, QUICK_LAST_TURN = 250, 1250
SAMPLE_EVERY = 500  # turns between RSS samples in the row's spread
FAKE_RESET_EVERY = 100  # the fake keeps every request body: keep its memory flat


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


@dataclass
class Workload:
    """20 conversations of 5 agents each on the fake server, driven `IN_FLIGHT` turns at a time."""

    proc: Proc
    fake: FakeServer
    world: World
    rooms: list[Room]
    done: int = 0  # turns answered
    forget: bool = False  # delete each turn's rows once answered: the history stays as long as it was

    @classmethod
    def build(cls, proc: Proc, fake: FakeServer) -> Workload:
        world = World(proc, fake)
        configs = [world.config("openai") for _ in range(3)] + [world.config("anthropic") for _ in range(2)]
        rooms = [world.room([(c, f"words-30-r{r}a{i}") for i, c in enumerate(configs)]) for r in range(CONVERSATIONS)]
        return cls(proc, fake, world, rooms)

    def warm_sdks(self) -> None:
        """5 turns in each of 4 conversations, one at a time: both SDKs loaded, every config's client made."""
        for room in self.rooms[:4]:
            for _ in range(5):
                self.world.turn(room)
                self.done += 1

    def advance_to(self, turns: int) -> None:
        """Run turns until `turns` have been answered in all."""
        pending: list[Any] = []
        started = self.done
        while self.done < turns:
            while len(pending) < IN_FLIGHT and self.done + len(pending) < turns:
                room = self.rooms[(self.done + len(pending)) % len(self.rooms)]
                request_id, _ = self.proc.request("processUserMessage", {"conversationId": room.conversation_id,
                                                                         "content": "And what comes next?"})
                pending.append(request_id)
            _, response = self.proc.response(pending.pop(0))
            if "error" in response or response["result"]["failedAgents"]:
                raise RuntimeError(f"turn failed: {response}")
            if self.forget:
                self.world.forget_turn(response["result"])
            self.done += 1
            if self.done % FAKE_RESET_EVERY == 0 or self.done == turns and self.done > started:
                self.fake.reset()


@contextmanager
def workload(probe: bool = False, trace_frames: int = 0) -> Iterator[tuple[Workload, ProbeClient | None]]:
    with FakeServer() as fake, tempfile.TemporaryDirectory() as tmp:
        client: ProbeClient | None = None
        if probe:
            fifos = Path(tmp) / "probe"
            fifos.mkdir()
            client = ProbeClient(fifos)
            root = bench_proc.SIDECAR_ROOT
            env = {"BENCH_MEM_FIFOS": str(fifos), "PYTHONPATH": f"{root}{os.pathsep}{bench_proc.REPO}"}
            if trace_frames:
                env["PYTHONTRACEMALLOC"] = str(trace_frames)
            data = Path(tmp) / "data"
            proc = Proc([sys.executable, "-m", "bench.memprobe", "--data-dir", str(data), "--secret-store",
                         "memory", "--log-level", "info"], env=env, cwd=root)
        else:
            proc = sidecar(Path(tmp) / "data")
        proc.keep_notifications = False
        try:
            fake.record_chunks(False)
            yield Workload.build(proc, fake), client
        except Exception:
            print(f"sidecar stderr: {proc.stderr_tail(30)}", file=sys.stderr)
            raise
        finally:
            proc.close()
            if client is not None:
                client.close()


def measure(quick: bool) -> list[Row]:
    warm_up, last = (QUICK_WARM_UP_TURNS, QUICK_LAST_TURN) if quick else (WARM_UP_TURNS, LAST_TURN)
    every = SAMPLE_EVERY // 2 if quick else SAMPLE_EVERY
    idle = Summary.of(idle_rss(3))
    rows = [Row("memory: idle RSS (after initialize)", idle.p50, "MB", "≤ 60 MB", idle.p50 <= 60,
                f"min–max {idle.min:.1f}–{idle.max:.1f} MB, n={idle.n} processes")]
    with workload() as (load, _):
        load.warm_sdks()
        warm = load.proc.rss_mb()
        rows.append(Row("memory: RSS after turns, both SDKs loaded (20 turns × 5 agents)", warm, "MB", "≤ 150 MB",
                        warm <= 150, "one process"))
        load.advance_to(warm_up)
        base = load.proc.rss_mb()
        trace = [(warm_up, base)]
        while load.done < last:
            load.advance_to(min(last, load.done + every))
            trace.append((load.done, load.proc.rss_mb()))
        final = trace[-1][1]
        growth = (final - base) / base * 100
        rows.append(Row(f"memory: growth from turn {warm_up:,} to turn {last:,} (5 agents, 20 conversations)",
                        growth, "%", "≤ 2 %", growth <= 2,
                        f"{base:.1f} → {final:.1f} MB; RSS at turn: "
                        + ", ".join(f"{turn:,} {mb:.1f}" for turn, mb in trace),
                        note=f"{last * 5:,} agent replies in all; {IN_FLIGHT} turns in flight"))
    return rows


def _mb(n: float) -> str:
    return f"{n / 2**20:7.2f}"


def probe_run(turns: int, every: int, snapshots: list[int], trace_frames: int, folder: Path, forget: bool) -> None:
    """Print allocator and SQLite figures every `every` turns; diff the tracemalloc snapshots taken at `snapshots`."""
    columns = ("turn", "rss", "rss_anon", "rss_file", "heap_in_use", "heap_free", "mmapped", "sqlite",
               "page_cache", "pymalloc_blk", "traced", "objects", "threads")
    print("  ".join(f"{c:>12}" for c in columns), flush=True)
    with workload(probe=True, trace_frames=trace_frames) as (load, client):
        assert client is not None
        load.warm_sdks()
        load.forget = forget
        checkpoints = sorted({*range(every, turns + 1, every), *snapshots})
        dumps: list[Path] = []
        for turn in checkpoints:
            load.advance_to(turn)
            if turn in snapshots:
                path = folder / f"snapshot-{turn}.tracemalloc"
                stats = client.ask(f"snapshot {path}")
                dumps.append(path)
            else:
                stats = client.ask("gc")
            print("  ".join(f"{v:>12}" for v in (
                turn, _mb(stats["rss_kb"] * 1024), _mb(stats["rss_anon_kb"] * 1024), _mb(stats["rss_file_kb"] * 1024),
                _mb(stats["heap_in_use"]), _mb(stats["heap_free"]), _mb(stats["mmapped"]),
                _mb(stats.get("sqlite_used", 0)), _mb(stats.get("sqlite_page_cache") or 0), stats["pymalloc_blocks"],
                _mb(stats.get("traced", 0)), stats.get("gc_objects", ""), stats["threads"])), flush=True)
            print("      resident KiB by mapping:", stats["maps"], flush=True)
        trimmed = client.ask("trim")
        print(f"after malloc_trim(0): rss {_mb(trimmed['rss_kb'] * 1024)} MB, heap free {_mb(trimmed['heap_free'])} MB")
    for earlier, later in zip(dumps, dumps[1:], strict=False):
        print(f"\n== growth {earlier.stem} → {later.stem}, by traceback ==")
        before, after = tracemalloc.Snapshot.load(str(earlier)), tracemalloc.Snapshot.load(str(later))
        diff = after.compare_to(before, "traceback")
        total = sum(d.size_diff for d in diff)
        print(f"total traced growth: {total / 1024:.1f} KiB")
        for stat in diff[:15]:
            print(f"\n{stat.size_diff / 1024:+.1f} KiB, {stat.count_diff:+d} blocks (now {stat.size / 1024:.1f} KiB)")
            for line in stat.traceback.format(limit=trace_frames or 1)[-2 * (trace_frames or 1):]:
                print("   ", line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.m_memory")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--probe", action="store_true", help="allocator/SQLite figures instead of the rows")
    parser.add_argument("--trace", type=int, default=0, metavar="FRAMES", help="tracemalloc with this many frames")
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--snapshots", default="", help="turn counts to snapshot at, e.g. 1000,2000 (needs --trace)")
    parser.add_argument("--forget", action="store_true", help="delete each turn's rows: a history that stays short")
    parser.add_argument("--root", type=Path, help="measure the sidecar source tree in this folder (as --baseline)")
    args = parser.parse_args(argv)
    if args.root is not None:
        bench_proc.SIDECAR_ROOT = args.root.resolve()
    if not args.probe:
        for row in measure(args.quick):
            print(row.measure, row.value, row.spread, row.note)
        return
    snapshots = [int(n) for n in args.snapshots.split(",") if n]
    with tempfile.TemporaryDirectory() as folder:
        probe_run(args.turns, args.every, snapshots if args.trace else [], args.trace, Path(folder), args.forget)


if __name__ == "__main__":
    main()
