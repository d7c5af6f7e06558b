"""Build the parts, run them in one task group, and wind down in order: work → database → writer."""

from __future__ import annotations

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream
from loguru import logger

from sidecar.chat.orchestrator import ChatEngine
from sidecar.dispatch import Dispatcher
from sidecar.lifecycle import Lifecycle
from sidecar.methods.table import METHODS
from sidecar.secrets import SecretStore
from sidecar.services import Services
from sidecar.settings import Settings
from sidecar.transport.framing import Frame, FrameDecoder
from sidecar.transport.stdio import FrameWriter, read_frames
from storage.ids import IdFactory
from storage.setup import open_database

WRITER_DRAIN_SECONDS = 0.4


async def serve(settings: Settings, in_fd: int, out_fd: int) -> None:
    """Serve JSON-RPC on the two file descriptors until stdin ends, `exit`, a signal, or the client goes."""
    ids = IdFactory()
    db = await anyio.to_thread.run_sync(open_database, settings.data_dir, ids)
    secrets = SecretStore(settings.secret_store)
    decoder = FrameDecoder()
    async with anyio.create_task_group() as outer:
        async with anyio.create_task_group() as work:
            lifecycle = Lifecycle(settings, secrets.kind, spawn=work.start_soon)
            writer = FrameWriter(out_fd, decoder, on_output_closed=lifecycle.output_lost)
            outer.start_soon(writer.run)
            chat = ChatEngine(db=db, ids=ids, secrets=secrets, emit=writer.emit_notification)
            lifecycle.cancel_work = chat.cancel_all
            lifecycle.close_resources = db.close
            services = Services(settings, db, ids, secrets, writer.emit_notification, lifecycle, chat)
            dispatcher = Dispatcher(METHODS, services, writer.send.send)
            frames_send, frames_receive = anyio.create_memory_object_stream[Frame](16)
            work.start_soon(read_frames, in_fd, decoder, frames_send)
            work.start_soon(lifecycle.watch_signals)
            work.start_soon(_serve_frames, frames_receive, dispatcher, lifecycle, work)
            logger.bind(data_dir=str(settings.data_dir), secret_store=secrets.kind).info("ready")
            await lifecycle.stop.wait()
            work.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await lifecycle.shutdown(own_request=False)  # no-op when a `shutdown` request already ran
            await chat.aclose()
        writer.send.close()
        # The writer drains what is queued, unless the client has stopped reading.
        outer.cancel_scope.deadline = anyio.current_time() + WRITER_DRAIN_SECONDS
    logger.bind(reason=lifecycle.stop_reason).info("exited")


async def _serve_frames(
    frames: MemoryObjectReceiveStream[Frame], dispatcher: Dispatcher, lifecycle: Lifecycle, work: TaskGroup
) -> None:
    async def handle(frame: Frame) -> None:
        try:
            await dispatcher.handle_frame(frame)
        finally:
            lifecycle.request_finished()

    async with frames:
        async for frame in frames:
            lifecycle.request_started()  # counted before the task starts, so EOF cannot race past it
            work.start_soon(handle, frame)
    # stdin EOF: no more requests, but every one already received is answered first.
    await lifecycle.wait_idle()
    lifecycle.request_exit("stdin closed")
