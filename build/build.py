"""Build the one-folder standalone binary into dist/chat-sidecar/, then print its size (in all, as a gzipped
tarball, and per top-level entry of the folder) and its cold-start time.

    python build/build.py            # needs the `build` extra: pip install -e '.[build]'
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
# Issue #14's budget for the Linux build (other platforms' folders differ and are reported, not checked).
DISK_LIMIT_MB, GZIPPED_LIMIT_MB = 60.0, 20.0
BINARY = DIST / "chat-sidecar" / ("chat-sidecar.exe" if sys.platform == "win32" else "chat-sidecar")


def build() -> None:
    # Bytecode without column tables (`-X no_debug_ranges` in the compiling process): ~15 % smaller .pyc, ~2 MB
    # of the gzipped tarball. A traceback then marks no columns under a line; our logs keep file and line only.
    env = {**os.environ, "PYTHONNODEBUGRANGES": "1"}
    subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
         "--distpath", str(DIST), "--workpath", str(ROOT / "build" / "work"),
         str(ROOT / "build" / "chat-sidecar.spec")],
        check=True, cwd=ROOT, env=env,
    )


def folder_size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def sizes_by_entry(folder: Path) -> list[tuple[str, float]]:
    """MB per top-level entry (the executable, then each file or folder in `_internal/`), largest first."""
    entries = [p for p in folder.iterdir() if p.name != "_internal"] + sorted((folder / "_internal").iterdir())
    sizes = [(str(p.relative_to(folder)), folder_size_mb(p) if p.is_dir() else p.stat().st_size / 1e6) for p in entries]
    return sorted(sizes, key=lambda entry: -entry[1])


def gzipped_tarball_mb(folder: Path) -> float:
    with tempfile.TemporaryFile() as out:
        with tarfile.open(fileobj=out, mode="w:gz") as tar:
            tar.add(folder, arcname=folder.name)
        return out.tell() / 1e6


def size_table(folder: Path, rows: int = 20) -> str:
    """A Markdown table of the largest entries; the rest summed in one row."""
    sizes = sizes_by_entry(folder)
    lines = ["| entry | MB |", "|---|---|"] + [f"| `{name}` | {mb:.2f} |" for name, mb in sizes[:rows]]
    rest = sizes[rows:]
    lines.append(f"| {len(rest)} more entries | {sum(mb for _, mb in rest):.2f} |")
    return "\n".join(lines)


def cold_start_ms(runs: int = 5) -> list[float]:
    """Spawn → `initialize` answered, in milliseconds, for `runs` fresh processes."""
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}).encode() + b"\n"
    timings = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as data_dir:
            started = time.perf_counter()
            proc = subprocess.Popen(
                [str(BINARY), "--data-dir", data_dir, "--secret-store", "memory"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )
            assert proc.stdin and proc.stdout
            proc.stdin.write(request)
            proc.stdin.flush()
            answer = json.loads(proc.stdout.readline())
            timings.append((time.perf_counter() - started) * 1000)
            proc.stdin.close()
            proc.wait(10)
            if answer.get("result", {}).get("protocolVersion") != "1":
                raise SystemExit(f"the binary did not answer initialize: {answer}")
    return timings


def main() -> None:
    started = time.perf_counter()
    build()
    print(f"built {BINARY.relative_to(ROOT)} in {time.perf_counter() - started:.0f} s")
    folder = BINARY.parent
    on_disk, gzipped = folder_size_mb(folder), gzipped_tarball_mb(folder)
    print(f"size: {on_disk:.1f} MB (one folder), {gzipped:.1f} MB gzipped")
    print(size_table(folder))
    if sys.platform == "linux" and (on_disk > DISK_LIMIT_MB or gzipped > GZIPPED_LIMIT_MB):
        raise SystemExit(f"over the size budget ({DISK_LIMIT_MB:g} MB on disk, {GZIPPED_LIMIT_MB:g} MB gzipped): "
                         "see what grew in the table above")
    timings = cold_start_ms()
    print(f"cold start (spawn → initialize answered): median {statistics.median(timings):.0f} ms, "
          f"min {min(timings):.0f} ms, max {max(timings):.0f} ms over {len(timings)} runs")
    shutil.rmtree(ROOT / "build" / "work", ignore_errors=True)


if __name__ == "__main__":
    main()
