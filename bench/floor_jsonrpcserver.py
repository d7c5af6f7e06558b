"""The chosen libraries' own cost: jsonrpcserver 5.0.9 on anyio over stdio, with nothing of the sidecar's.

`python -m bench.floor_jsonrpcserver` answers `initialize` and `ping` (NDJSON, one request a line) the way the
libraries are documented to be used and the way /work/shared/STACK-NOTES.md recommends for stdio: a daemon
thread does `os.read(0)` and splits lines, hands each to the event loop through a memory object stream
(`from_thread.run` with the loop's token), and `async_dispatch` — jsonrpcserver's public entry point, with its
jsonschema request validation — answers it with `async def` methods returning `Success`. Answers are written
to fd 1 on the loop. No logging set-up, no database, no validation of our own, none of our modules.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectSendStream
from jsonrpcserver import Result, Success, async_dispatch


async def initialize(**_params: Any) -> Result:
    return Success({"serverInfo": {"name": "jsonrpcserver-anyio", "version": "0"}, "protocolVersion": "1"})


async def ping(**_params: Any) -> Result:
    return Success({})


METHODS = {"initialize": initialize, "ping": ping}


def read_lines(send: MemoryObjectSendStream[bytes], token: anyio.lowlevel.EventLoopToken) -> None:
    """Daemon thread: stdin lines → the loop, until EOF (then the stream is closed)."""
    pending = b""
    while chunk := os.read(0, 65536):
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            if line.strip():
                anyio.from_thread.run(send.send, line, token=token)
    anyio.from_thread.run_sync(send.close, token=token)


async def serve() -> None:
    send, receive = anyio.create_memory_object_stream[bytes](100)
    token = anyio.lowlevel.current_token()
    threading.Thread(target=read_lines, args=(send, token), daemon=True).start()
    async with receive:
        async for line in receive:
            response = await async_dispatch(line.decode(), methods=METHODS)
            if response:
                os.write(1, response.encode() + b"\n")


def main() -> int:
    anyio.run(serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
