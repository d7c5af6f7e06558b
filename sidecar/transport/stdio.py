"""The process's stdin and stdout: fd protection, the stdin reader and the single frame writer.

Only this module touches fd 0 and fd 1. Everything above it sees two memory streams: frames in,
messages (JSON-ready dicts or lists) out.
"""

from __future__ import annotations

import json
import math
import os
import select
import selectors
import stat
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

from sidecar.logs import logger
from sidecar.transport.framing import Frame, FrameDecoder, encode_frame

READ_CHUNK = 64 * 1024
# A pipe that polls writable takes this many bytes without blocking (POSIX: writes up to PIPE_BUF are atomic).
_WRITE_NOW_LIMIT = getattr(select, "PIPE_BUF", 0)


def protect_stdout() -> int:
    """Keep a private duplicate of fd 1 for frames; point fd 1 and `sys.stdout` at stderr.

    After this a stray `print()`, a C extension or a child process writing to fd 1 lands on stderr.
    """
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol_fd


async def read_frames(in_fd: int, decoder: FrameDecoder, send: MemoryObjectSendStream[Frame]) -> None:
    """Send the frames read from `in_fd` until EOF, then close `send`.

    A pipe, socket or terminal is read on the event loop when the poller says it has data: no thread
    hand-off per request. Anything the loop cannot poll (a regular file, /dev/null, Windows pipes) is
    read by a daemon thread instead.
    """
    if not _pollable(in_fd):
        start_stdin_reader(in_fd, decoder, send)
        return
    async with send:
        while True:
            await anyio.wait_readable(in_fd)
            try:
                chunk = os.read(in_fd, READ_CHUNK)  # readable, so this returns at once
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            for frame in decoder.feed(chunk) if chunk else decoder.finish():
                await send.send(frame)  # the bounded stream pushes back on a fast client
            if not chunk:
                return


def _pollable(fd: int) -> bool:
    """A pipe, socket or terminal: what every poller reports readable only when data or EOF is there.

    Decided by file type, not by whether the selector takes the fd: kqueue (macOS) accepts a regular file
    but never reports its EOF as readable.
    """
    if sys.platform == "win32":
        return False  # asyncio there polls sockets only
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (stat.S_ISCHR(mode) and os.isatty(fd))):
            return False  # a regular file, /dev/null, a closed fd
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
    except (OSError, ValueError):
        return False
    return True


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
        self._poller = _write_poller(self.out_fd)
        self._give_up_at = math.inf  # once stopping: how long a sender may still wait for room
        self._waiting: set[anyio.CancelScope] = set()
        self.dropped = 0

    async def send_message(self, message: Any) -> bool:
        """Queue a message; wait for room while the client reads slowly, but once the process is stopping
        (`stop_waiting`), give up at the deadline and drop it: a client that stopped reading never holds up
        the exit."""
        try:
            self.send.send_nowait(message)
            return True
        except anyio.WouldBlock:
            pass
        with anyio.CancelScope(deadline=self._give_up_at) as waiting:
            self._waiting.add(waiting)
            try:
                await self.send.send(message)
            finally:
                self._waiting.discard(waiting)
        if not waiting.cancelled_caught:
            return True
        self.dropped += 1
        if self.dropped == 1:
            logger.warning("the client is not reading: frames are dropped while the process stops")
        return False

    def stop_waiting(self, grace: float) -> None:
        """The process is stopping: senders wait at most `grace` more seconds for room, then drop."""
        self._give_up_at = min(self._give_up_at, anyio.current_time() + grace)
        for waiting in self._waiting:
            waiting.deadline = min(waiting.deadline, self._give_up_at)

    async def run(self) -> None:
        async with self._receive:
            async for message in self._receive:
                batch = [message]
                while len(batch) < 64:
                    try:
                        batch.append(self._receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                if self.closed:
                    continue
                framing = self.decoder.framing
                data = b"".join(encode_frame(_to_json_bytes(message), framing) for message in batch)
                rest = self._write_now(data)
                if rest:
                    # The pipe is full or the batch is large: a thread waits on the slow reader, the loop does not.
                    await anyio.to_thread.run_sync(self._write_all, rest, limiter=self._lane, abandon_on_cancel=True)

    async def emit_notification(self, method: str, params: dict[str, Any]) -> bool:
        return await self.send_message({"jsonrpc": "2.0", "method": method, "params": params})

    def _write_now(self, data: bytes) -> memoryview:
        """Write on the loop when that cannot block (small, and the fd polls writable); the unwritten rest."""
        view = memoryview(data)
        if self._poller is None or len(data) > _WRITE_NOW_LIMIT or not self._poller.poll(0):
            return view
        try:
            return view[os.write(self.out_fd, view) :]
        except OSError as exc:  # EPIPE: the client is gone
            self._output_lost(exc)
            self.on_output_closed()
            return view[:0]

    def _write_all(self, view: memoryview) -> None:
        try:
            while view:
                view = view[os.write(self.out_fd, view) :]
        except OSError as exc:  # EPIPE: the client is gone
            self._output_lost(exc)
            anyio.from_thread.run_sync(self.on_output_closed)

    def _output_lost(self, exc: OSError) -> None:
        self.closed = True
        logger.warning("stdout closed: {}", type(exc).__name__)


def _write_poller(fd: int) -> Any:
    if not hasattr(select, "poll"):
        return None  # Windows: every write goes through the thread
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return poller


def _to_json_bytes(message: Any) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
