"""Build the parts, run them in one task group, and wind down in order: work → database → writer.

Start-up order is chosen for the first answer: the transport and the dispatcher are up before the database
is opened, so `initialize` and `ping` (which need no data) are answered while the file is opened, migrated
and seeded in a worker thread. Every query waits for that open (`Database.pending`).
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream

from sidecar.dispatch import Dispatcher
from sidecar.lifecycle import CLOSE_SECONDS, Lifecycle
from sidecar.logs import logger
from sidecar.methods.table import METHODS
from sidecar.methods.table_data import DATA_MODULES
from sidecar.secrets import SecretStore
from sidecar.services import Services
from sidecar.settings import Settings
from sidecar.transport.framing import Frame, FrameDecoder
from sidecar.transport.stdio import FrameWriter, read_frames
from sidecar.warmup import warm_up
from storage.db import Database
from storage.ids import IdFactory

if TYPE_CHECKING:
    from peewee import SqliteDatabase

WRITER_DRAIN_SECONDS = 0.3
WRITER_GRACE_SECONDS = 0.3  # once stopping, how long a frame may wait for a client that is not reading


async def serve(settings: Settings, in_fd: int, out_fd: int) -> None:
    """Serve JSON-RPC on the two file descriptors until stdin ends, `exit`, a signal, or the client goes.

    Raises what opening the database raised (e.g. `SchemaTooNewError`), after winding down.
    """
    ids = IdFactory()
    db = Database.pending()
    secrets = SecretStore(settings.secret_store)
    decoder = FrameDecoder()
    open_failure: list[BaseException] = []
    async with anyio.create_task_group() as outer:
        async with anyio.create_task_group() as work:
            lifecycle = Lifecycle(settings, secrets.kind, spawn=work.start_soon)
            writer = FrameWriter(out_fd, decoder, on_output_closed=lifecycle.output_lost)
            outer.start_soon(writer.run)
            services = Services(settings, db, ids, secrets, writer.emit_notification, lifecycle)

            def cancel_work(drop_frames: bool) -> None:
                if drop_frames:
                    writer.stop_waiting(WRITER_GRACE_SECONDS)  # a client that stopped reading never holds up the end
                if services.chat is not None:
                    services.chat.cancel_all()

            lifecycle.cancel_work = cancel_work
            lifecycle.close_resources = lambda: db.aclose(CLOSE_SECONDS)
            dispatcher = Dispatcher(METHODS, services, writer.send_message)
            frames_send, frames_receive = anyio.create_memory_object_stream[Frame](16)
            work.start_soon(read_frames, in_fd, decoder, frames_send)
            work.start_soon(lifecycle.watch_signals)
            work.start_soon(_serve_frames, frames_receive, dispatcher, lifecycle, work)
            work.start_soon(_open_database, db, settings.data_dir, ids, lifecycle, open_failure)
            work.start_soon(warm_up, services)  # waits for the open, then loads what the first turn needs
            logger.bind(data_dir=str(settings.data_dir), secret_store=secrets.kind).info("ready")
            await lifecycle.stop.wait()
            # Before the work is cancelled: settling the cancelled agents must not wait on a client gone quiet
            # (`exit` without `shutdown`, or stdin's end, reach here without the shutdown's first half).
            lifecycle.cancel_work(True)
            work.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await lifecycle.shutdown(own_request=False)  # no-op when a `shutdown` request already ran
            if services.chat is not None:
                await services.chat.aclose()
        writer.send.close()
        # The writer drains what is queued, unless the client has stopped reading.
        outer.cancel_scope.deadline = anyio.current_time() + WRITER_DRAIN_SECONDS
    logger.bind(reason=lifecycle.stop_reason).info("exited")
    if open_failure:
        raise open_failure[0]


async def _open_database(
    db: Database, data_dir: Path, ids: IdFactory, lifecycle: Lifecycle, failure: list[BaseException]
) -> None:
    started = anyio.current_time()
    try:
        await db.open_with(lambda: _prepare(data_dir, ids))
    except Exception as exc:  # the process cannot work without its data: stop, and `serve` re-raises it
        failure.append(exc)
        lifecycle.request_exit("database unavailable")
    else:
        logger.bind(ms=round((anyio.current_time() - started) * 1000)).debug("database open")


def _prepare(data_dir: Path, ids: IdFactory) -> SqliteDatabase:
    # Runs in the opener's worker thread, so the imports of peewee, the models and the data API happen there too.
    from storage.setup import prepare_sqlite

    sqlite = prepare_sqlite(data_dir, ids)
    for module in DATA_MODULES:
        import_module(module)
    return sqlite


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
