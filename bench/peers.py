"""Minimal stdio JSON-RPC servers on other stacks, for the side-by-side `ping` benchmark.

`python -m bench.peers pygls` — pygls's generic `JsonRPCServer` (LSP base-protocol framing) with one `ping`
  handler returning `{}`; `start_io()` (its asyncio loop, its threaded stdin reader).
`python -m bench.peers mcp` — the MCP python-sdk's `MCPServer` on its stdio transport (NDJSON) with one trivial
  tool; the benchmark sends MCP's own `ping` request (answered `{}`, allowed before `initialize`).

Both are installed only as the `bench` extra.

The two floors are separate scripts, so that nothing of this module or of pygls/mcp is in their start-up:
`FLOOR_STDLIB` (bench/floor_stdlib.py, the standard library alone) and `FLOOR_JSONRPCSERVER`
(bench/floor_jsonrpcserver.py, jsonrpcserver + anyio and nothing of ours). Both answer `initialize` and `ping`
over NDJSON; the `rpc` and `cold` measures run them next to the sidecar.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

FLOOR_STDLIB = [sys.executable, "-m", "bench.floor_stdlib"]
FLOOR_JSONRPCSERVER = [sys.executable, "-m", "bench.floor_jsonrpcserver"]
FLOOR_MODULES = ("bench/floor_stdlib.py", "bench/floor_jsonrpcserver.py")


def run_pygls() -> None:
    from pygls.protocol import JsonRPCProtocol, default_converter
    from pygls.server import JsonRPCServer

    server = JsonRPCServer(JsonRPCProtocol, default_converter)

    @server.feature("ping")
    def ping(params: Any) -> dict[str, Any]:
        return {}

    server.start_io()


def run_mcp() -> None:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("bench-peer", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text."""
        return text

    server.run("stdio")


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    {"pygls": run_pygls, "mcp": run_mcp}[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
