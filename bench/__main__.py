"""`python -m bench [--quick] [--only NAME ...] [--baseline DIR] [--json PATH] [--markdown]`

Runs each measure against a real sidecar subprocess and the fake provider server, then prints one table.
`--baseline DIR` runs the same measures (except the in-process context build) against the sidecar source tree
in DIR too (e.g. `git archive <rev> sidecar storage schema | tar -x -C DIR`), and prints both side by side.
Measures: context, rpc, cold, first-turn, turns, history, memory, scale, search, auto. Check `uptime` first: on a busy
machine the figures drift.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench import machine, proc
from bench.stats import Row, fmt

MEASURES = ("context", "rpc", "cold", "first-turn", "turns", "history", "memory", "scale", "search", "auto")


def run_measure(name: str, quick: bool) -> list[Row]:
    module = importlib.import_module(f"bench.m_{name.replace('-', '_')}")
    result = module.measure(quick)
    return result[0] if isinstance(result, tuple) else result  # rpc also returns its raw figures


def table(rows: list[Row], baseline: dict[str, Row] | None, markdown: bool) -> str:
    head = ["measure", "value", "target", "met", "spread", "ideal / ratio", "note"]
    if baseline is not None:
        head[1:2] = ["before", "after"]
    lines = []
    for row in rows:
        met = "—" if row.ok is None else ("yes" if row.ok else "NO")
        cells = [row.measure, fmt(row.value, row.unit), row.target, met, row.spread, row.ideal, row.note]
        if baseline is not None:
            before = baseline.get(row.measure)
            cells[1:2] = [fmt(before.value, before.unit) if before else "", fmt(row.value, row.unit)]
        lines.append(cells)
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c.replace("|", "/") for c in cells) + " |" for cells in lines]
        return "\n".join(out)
    return "\n".join("  ".join(c for c in cells if c) for cells in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and turns (a few minutes on 2 cores)")
    parser.add_argument("--only", nargs="+", choices=MEASURES, default=list(MEASURES))
    parser.add_argument("--baseline", type=Path, help="also measure the sidecar source tree in this folder")
    parser.add_argument("--json", type=Path, help="write every row and the machine description here")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)

    info = machine.describe()
    print(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, {info['os']}, "
          f"load {info['load']}", file=sys.stderr)
    started = time.monotonic()
    baseline_rows: dict[str, Row] | None = None
    if args.baseline is not None:
        proc.SIDECAR_ROOT = args.baseline.resolve()
        baseline_rows = {}
        for name in args.only:
            if name == "context":
                continue
            print(f"[baseline] {name} …", file=sys.stderr)
            baseline_rows.update({r.measure: r for r in run_measure(name, args.quick)})
        proc.SIDECAR_ROOT = proc.REPO
    rows: list[Row] = []
    for name in args.only:
        print(f"{name} …", file=sys.stderr)
        rows.extend(run_measure(name, args.quick))
    info["load_after"] = list(machine.load_average())
    info["seconds"] = round(time.monotonic() - started)
    print(table(rows, baseline_rows, args.markdown))
    print(f"machine: {json.dumps(info)}")
    if args.json:
        payload: dict[str, Any] = {"machine": info, "quick": args.quick, "rows": [r.as_dict() for r in rows]}
        if baseline_rows is not None:
            payload["baseline"] = [r.as_dict() for r in baseline_rows.values()]
        args.json.write_text(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
