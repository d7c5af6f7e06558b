"""The floor: a stdio JSON-RPC 2.0 server in the standard library alone, for the `rpc` and `cold` rows.

`python -m bench.floor_stdlib` reads NDJSON requests from stdin, one line at a time, and answers `initialize`
and `ping` on stdout (anything else: -32601). No framing detection, batches, validation, concurrency or logging:
what it costs is the interpreter starting, `json`, and one blocking read/write loop — the least any Python
stdio server can cost.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

RESULTS: dict[str, Any] = {
    "initialize": {"serverInfo": {"name": "stdlib-floor", "version": "0"}, "protocolVersion": "1"},
    "ping": {},
}


def answer(request: dict[str, Any]) -> dict[str, Any]:
    method = request.get("method")
    if method in RESULTS:
        return {"jsonrpc": "2.0", "id": request.get("id"), "result": RESULTS[method]}
    return {"jsonrpc": "2.0", "id": request.get("id"), "error": {"code": -32601, "message": "Method not found"}}


def main() -> int:
    for line in sys.stdin.buffer:  # blocks until a whole line is in; ends at EOF
        if not line.strip():
            continue
        reply = memoryview(json.dumps(answer(json.loads(line)), separators=(",", ":")).encode() + b"\n")
        while reply:  # fd 1 unbuffered: each answer leaves at once
            reply = reply[os.write(1, reply) :]
    return 0


if __name__ == "__main__":
    sys.exit(main())
