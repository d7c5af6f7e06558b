"""sidecar.logs: records logged before loguru loads are kept, then written in order with the time they were logged.

Each case runs in a fresh interpreter: the logger's state is the process's, and this test process has loaded loguru.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from typing import Any

SCRIPT_HEAD = """
import io, logging, sys
from sidecar import logs
from sidecar.logs import configure_logging, load_loguru, logger
out = io.StringIO()
configure_logging(LEVEL, None, out)
"""


def _run(level: str, body: str) -> dict[str, Any]:
    script = f"LEVEL = {level!r}\n{SCRIPT_HEAD}\n{body}"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_records_logged_before_loguru_loads_are_written_when_it_loads_in_order_with_their_time() -> None:
    report = _run("info", """
import time
logger.bind(reason="x").info("first {}", 1)
logger.debug("below the level: never written")
try:
    raise ValueError("secret text of an exception")
except ValueError as exc:
    logger.opt(exception=exc).bind(ref="r1").error("second")
logging.getLogger("jsonrpcserver.x").critical("from the stdlib {not a format}")
before = out.getvalue()
loaded_before = "loguru" in sys.modules
time.sleep(0.05)  # so a time taken at load would differ from the logged one
load_loguru()
logger.warning("after the load")
import json
print(json.dumps({"before": before, "loaded_before": loaded_before, "lines": out.getvalue().splitlines()}))
""")
    assert report["before"] == "" and report["loaded_before"] is False
    lines = [json.loads(line) for line in report["lines"]]
    assert [(line["level"], line["msg"]) for line in lines] == [
        ("info", "first 1"),
        ("error", "second"),
        ("critical", "from the stdlib {not a format}"),
        ("warning", "after the load"),
    ]
    assert lines[0]["logger"] == "__main__" and lines[0]["reason"] == "x"
    assert lines[2]["logger"] == "jsonrpcserver.x"
    assert lines[1]["ref"] == "r1" and lines[1]["exc"] == "ValueError" and "secret text" not in json.dumps(lines)
    assert "logged_at" not in lines[0] and "logger_name" not in lines[0]
    kept_at = datetime.fromisoformat(lines[2]["ts"])
    written_at = datetime.fromisoformat(lines[3]["ts"])
    assert (written_at - kept_at).total_seconds() >= 0.05  # the kept record carries its own time, not the load's


def test_a_flood_before_the_load_keeps_the_first_records_and_says_how_many_were_dropped() -> None:
    report = _run("info", """
logs.KEPT_RECORDS_MAX = 3
for n in range(5):
    logger.info("record {}", n)
load_loguru()
load_loguru()  # idempotent: written once
import json
print(json.dumps({"lines": out.getvalue().splitlines()}))
""")
    messages = [json.loads(line)["msg"] for line in report["lines"]]
    assert messages == ["record 0", "record 1", "record 2", "2 log records before start-up ended were dropped"]


def test_loading_adds_no_default_loguru_sink_and_leaves_no_switch_for_child_processes() -> None:
    report = _run("debug", """
import os
load_loguru()
from loguru import logger as loguru_logger
import json
print(json.dumps({"sinks": len(loguru_logger._core.handlers), "env": "LOGURU_AUTOINIT" in os.environ}))
""")
    assert report == {"sinks": 1, "env": False}
