"""The process's life: running → shutting down → exit; the request count; parent-process and signal watches."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from sidecar import __version__
from sidecar.logs import logger
from sidecar.providers.names import PROVIDER_NAMES
from sidecar.settings import Settings

PROTOCOL_VERSION = "1"
PARENT_POLL_SECONDS = 0.25
SHUTDOWN_GRACE_SECONDS = 0.7  # end budget: 0.7 + close 0.2 + providers 0.2 + drain 0.3 < 2 s, room for load
# A `shutdown` request has no 2 s bound of its own (the one that counts runs from `exit`), so the requests read before
# it get longer to answer: on a slow machine the first turn after launch can take over 0.7 s to save its message
# (it waits for the engine's import beside the warm-up's), and one refused for a closed database breaks §2's promise.
SHUTDOWN_REQUEST_GRACE_SECONDS = 3.0
CLOSE_SECONDS = 0.2


async def _nothing() -> None:
    return None


class Lifecycle:
    """Holds the process state. `stop` is set when the process should end; the app then winds down and exits."""

    def __init__(self, settings: Settings, secret_storage: str, spawn: Callable[..., Any]) -> None:
        self.settings = settings
        self.secret_storage = secret_storage
        self.stop = anyio.Event()
        self.stop_reason = ""
        self._spawn = spawn  # start_soon of the task group that owns background watches
        self._accepting = True
        self._active_requests = 0
        self._idle = anyio.Event()
        self._idle.set()
        self._shutdown_started = False
        self._shutdown_done = anyio.Event()
        self._watched_pid: int | None = None
        # Set once by the app while it builds the parts, before any frame is read.
        # Cancels in-flight agents; with True, also stops waiting for a client that has stopped reading.
        self.cancel_work: Callable[[bool], None] = lambda drop_frames: None
        self.close_resources: Callable[[], Awaitable[None]] = _nothing  # flushes and closes the database

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def stopping(self) -> bool:
        """No new work: `shutdown`, a signal, the parent's death or a lost stdout has begun the end."""
        return not self._accepting

    def request_started(self) -> None:
        self._active_requests += 1
        if self._idle.is_set():
            self._idle = anyio.Event()

    def request_finished(self) -> None:
        self._active_requests -= 1
        if self._active_requests == 0:
            self._idle.set()

    async def wait_idle(self, others_than_me: int = 0) -> None:
        """Wait until at most `others_than_me` requests are in flight."""
        while self._active_requests > others_than_me:
            if others_than_me == 0:
                await self._idle.wait()
            else:
                await anyio.sleep(0.01)  # a shutdown request waits on its peers; rare and short

    def initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        process_id = params.get("processId")
        if isinstance(process_id, int) and process_id > 0 and self._watched_pid is None:
            self._watched_pid = process_id
            self._spawn(self._watch_parent, process_id)
        return {
            "serverInfo": {"name": "chat-sidecar", "version": __version__},
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {
                "framing": ["ndjson", "lsp"],
                "batch": True,
                "cancelRequest": True,
                "providers": list(PROVIDER_NAMES),
                "notifications": ["agent:update", "all:complete", "auto:state"],
            },
            "dataDir": str(self.settings.data_dir),
            "secretStorage": self.secret_storage,
        }

    async def shutdown(self, own_request: bool = True) -> None:
        """Stop taking work, cancel agents, let in-flight requests answer (bounded), close the database.

        A second call (a signal after `shutdown`, say) waits for the first to finish.
        """
        self._accepting = False
        if self._shutdown_started:
            if not own_request:
                self.cancel_work(True)  # a signal after `shutdown`: the client may have stopped reading since
            with anyio.move_on_after(SHUTDOWN_GRACE_SECONDS + CLOSE_SECONDS):
                await self._shutdown_done.wait()
            return
        self._shutdown_started = True
        try:
            # A `shutdown` request comes from a client that reads its answer; any other end may not be read.
            self.cancel_work(not own_request)
            with anyio.move_on_after(SHUTDOWN_REQUEST_GRACE_SECONDS if own_request else SHUTDOWN_GRACE_SECONDS):
                await self.wait_idle(others_than_me=1 if own_request else 0)
            await self.close_resources()
        finally:
            self._shutdown_done.set()

    def request_exit(self, reason: str) -> None:
        if not self.stop.is_set():
            self.stop_reason = reason
            logger.bind(reason=reason).info("stopping")
            self.stop.set()

    def output_lost(self) -> None:
        """stdout is gone (the client died): cancel everything at once and exit."""
        self._accepting = False
        self.cancel_work(True)
        if self.stop.is_set():
            return  # already winding down, maybe past the task group this would spawn into
        self._spawn(self._stop_after_shutdown, "stdout closed")

    async def _stop_after_shutdown(self, reason: str) -> None:
        await self.shutdown(own_request=False)
        self.request_exit(reason)

    async def watch_signals(self) -> None:
        if sys.platform == "win32":
            return  # no POSIX signals; stdin EOF and processId cover Windows
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                logger.bind(signal=signal.Signals(signum).name).info("signal received")
                self._spawn(self._stop_after_shutdown, "signal")
                return

    async def _watch_parent(self, pid: int) -> None:
        is_my_parent = hasattr(os, "getppid") and os.getppid() == pid
        # A dead parent can linger as a zombie that still "exists": being re-parented also means it is gone.
        while is_process_alive(pid) and not (is_my_parent and os.getppid() != pid):
            await anyio.sleep(PARENT_POLL_SECONDS)
        logger.bind(pid=pid).info("parent process is gone")
        await self._stop_after_shutdown("parent exited")


MAX_PID = 2**32 - 1  # no platform has larger process ids (Windows DWORD); a larger one cannot be alive


def is_process_alive(pid: int) -> bool:
    if pid > MAX_PID:
        return False
    if sys.platform == "win32":
        return _is_alive_windows(pid)
    try:
        os.kill(pid, 0)  # signal 0 only checks existence (on POSIX; on Windows it would kill)
    except (ProcessLookupError, OverflowError):  # OverflowError: a pid too large for pid_t cannot exist
        return False
    except PermissionError:
        return True
    return True


def _is_alive_windows(pid: int) -> bool:
    import ctypes

    synchronize, wait_timeout = 0x00100000, 0x00000102
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(synchronize, False, pid)
    if not handle:
        return False
    try:
        return kernel32.WaitForSingleObject(handle, 0) == wait_timeout
    finally:
        kernel32.CloseHandle(handle)
