"""Start-up tuning that must not outlive start-up: the garbage collector is back on (with the start-up objects
frozen) and loguru's LOGURU_AUTOINIT switch is gone from the environment by the time requests are served.

The real `chat-sidecar` main runs in a subprocess; only `sidecar.app.serve` is wrapped, to report that state
from inside the process when serving begins (as bench/lagprobe.py wraps it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.sidecar_client import clean_env

WRAPPED_MAIN = """
import gc, json, os, sys
import sidecar.app
from sidecar.cli import main

original = sidecar.app.serve

async def serve(*args):
    state = {"gc": gc.isenabled(), "frozen": gc.get_freeze_count(), "autoinit": os.environ.get("LOGURU_AUTOINIT")}
    sys.stderr.write("STATE " + json.dumps(state) + "\\n")
    await original(*args)

sidecar.app.serve = serve
sys.argv = ["chat-sidecar", *sys.argv[1:]]
main()
"""


def test_serving_runs_with_the_collector_on_and_no_loguru_switch_left_behind(tmp_path: Path) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    done = subprocess.run(
        [sys.executable, "-c", WRAPPED_MAIN, "--data-dir", str(tmp_path / "data"), "--secret-store", "memory"],
        input=json.dumps(initialize) + "\n", capture_output=True, text=True, env=clean_env(), timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["result"]["protocolVersion"] == "1"
    state = json.loads(next(line for line in done.stderr.splitlines() if line.startswith("STATE "))[6:])
    assert state["gc"] is True
    assert state["frozen"] > 1000, "the start-up objects are frozen out of the collector's generations"
    assert state["autoinit"] is None
