"""`python -m bench.lagprobe <chat-sidecar args>`: the sidecar with an in-process event-loop lag probe.

The sidecar has no lag probe of its own, so this wrapper runs the unchanged `sidecar.cli.main` with
`sidecar.app.serve` wrapped: next to it runs a task that sleeps `PROBE_INTERVAL_S` again and again and
records how late each wake-up is (the loop lag: how long a ready callback waited behind other work).
When the sidecar exits the samples are written to `$BENCH_LAG_FILE` as JSON pairs `[woke at, lag ms]`, the
moment on the `time.monotonic()` clock (system-wide, so the client can cut the run into windows).
Nothing reaches stdout.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

PROBE_INTERVAL_S = 0.01


def main() -> None:
    import anyio

    import sidecar.app
    from sidecar.cli import main as sidecar_main

    samples: list[tuple[float, float]] = []
    out = os.environ.get("BENCH_LAG_FILE")
    original = sidecar.app.serve

    async def probe() -> None:
        while True:
            before = time.perf_counter()
            await anyio.sleep(PROBE_INTERVAL_S)
            woke = time.perf_counter()
            samples.append((time.monotonic(), (woke - before - PROBE_INTERVAL_S) * 1000))

    async def serve(*args: Any) -> None:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(probe)
                await original(*args)
                tg.cancel_scope.cancel()
        finally:
            if out:
                Path(out).write_text(json.dumps(samples))

    sidecar.app.serve = serve  # cli.serve_stdio imports `serve` from sidecar.app when it runs
    sys.argv[0] = "chat-sidecar"
    sidecar_main()


if __name__ == "__main__":
    main()
