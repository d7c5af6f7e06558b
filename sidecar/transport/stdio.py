"""The process's stdin and stdout: fd protection, the stdin reader thread and the single frame writer.

Only this module touches fd 0 and fd 1. Everything above it sees two memory streams: frames in,
messages (JSON-ready dicts or lists) out.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from loguru import logger

from sidecar.transport.framing import Frame, FrameDecoder, encode_frame

READ_CHUNK = 64 * 1024


def protect_stdout() -> int:
    """Keep a private duplicate of fd 1 for frames; point fd 1 and `sys.stdout` at stderr.

    After this a stray `print()`, a C extension or a child process writing to fd 1 lands on stderr.
    """
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol_fd


def start_stdin_reader(in_fd: int, decoder: FrameDecoder, send: MemoryObjectSendStream[Frame]) -> threading.Thread:
    """Read fd `in_fd` in a daemon thread (exit never waits for it) and send frames; close `send` at EOF.

    `os.read` on the raw fd, not `sys.stdin`, so a blocked read holds no interpreter lock at exit.
    """
    token = anyio.lowlevel.current_token()
    thread = threading.Thread(
        target=_pump_frames, args=(in_fd, decoder, send, token), name="stdin-reader", daemon=True
    )
    thread.start()
    return thread


def _pump_frames(in_fd: int, decoder: FrameDecoder, send: MemoryObjectSendStream[Frame], token: Any) -> None:
    try:
        while True:
            try:
                chunk = os.read(in_fd, READ_CHUNK)
            except OSError:
                chunk = b""
            frames = decoder.feed(chunk) if chunk else decoder.finish()
            if frames:
                # One hop into the loop per read, not per frame: a pipelined burst costs one wake-up.
                anyio.from_thread.run(_send_all, send, frames, token=token)
            if not chunk:
                break
        anyio.from_thread.run_sync(send.close, token=token)
    except (anyio.ClosedResourceError, anyio.BrokenResourceError, RuntimeError):
        return  # the loop is gone or nobody listens any more: nothing left to deliver to


async def _send_all(send: MemoryObjectSendStream[Frame], frames: list[Frame]) -> None:
    for frame in frames:
        await send.send(frame)  # the bounded stream still pushes back on a fast client


@dataclass
class FrameWriter:
    """The single writer of protocol frames. Messages go in through `send`; `run()` writes them in order."""

    out_fd: int
    decoder: FrameDecoder
    on_output_closed: Callable[[], None]
    buffer_size: int = 256
    closed: bool = False
    send: MemoryObjectSendStream[Any] = field(init=False)
    _receive: MemoryObjectReceiveStream[Any] = field(init=False)

    def __post_init__(self) -> None:
        # Bounded: a client that stops reading pushes back on producers instead of growing memory.
        self.send, self._receive = anyio.create_memory_object_stream[Any](self.buffer_size)
        self._lane = anyio.CapacityLimiter(1)

    async def run(self) -> None:
        async with self._receive:
            async for message in self._receive:
                batch = [message]
                while len(batch) < 64:
                    try:
                        batch.append(self._receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                if not self.closed:
                    # Serialising and writing off the loop: a slow pipe reader never freezes other work.
                    await anyio.to_thread.run_sync(self._write_batch, batch, limiter=self._lane, abandon_on_cancel=True)

    async def emit_notification(self, method: str, params: dict[str, Any]) -> None:
        await self.send.send({"jsonrpc": "2.0", "method": method, "params": params})

    def _write_batch(self, batch: list[Any]) -> None:
        framing = self.decoder.framing
        data = b"".join(encode_frame(_to_json_bytes(message), framing) for message in batch)
        view = memoryview(data)
        try:
            while view:
                written = os.write(self.out_fd, view)
                view = view[written:]
        except OSError as exc:  # EPIPE: the client is gone
            self.closed = True
            logger.warning("stdout closed: {}", type(exc).__name__)
            anyio.from_thread.run_sync(self.on_output_closed)


def _to_json_bytes(message: Any) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
