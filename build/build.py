"""Build the one-folder standalone binary into dist/chat-sidecar/, then print its size and cold-start time.

    python build/build.py            # needs the `build` extra: pip install -e '.[build]'
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
BINARY = DIST / "chat-sidecar" / ("chat-sidecar.exe" if sys.platform == "win32" else "chat-sidecar")


def build() -> None:
    subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
         "--distpath", str(DIST), "--workpath", str(ROOT / "build" / "work"),
         str(ROOT / "build" / "chat-sidecar.spec")],
        check=True, cwd=ROOT,
    )


def folder_size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


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
    print(f"size: {folder_size_mb(BINARY.parent):.1f} MB (one folder)")
    timings = cold_start_ms()
    print(f"cold start (spawn → initialize answered): median {statistics.median(timings):.0f} ms, "
          f"min {min(timings):.0f} ms, max {max(timings):.0f} ms over {len(timings)} runs")
    shutil.rmtree(ROOT / "build" / "work", ignore_errors=True)


if __name__ == "__main__":
    main()
