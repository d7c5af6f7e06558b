"""The stdio transport on real file descriptors: which stdin the loop polls, and when a write may skip the thread."""

from __future__ import annotations

import fcntl
import os
import select
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from sidecar.transport.framing import FrameDecoder
from sidecar.transport.stdio import FrameWriter, _pollable, read_frames

pytestmark = pytest.mark.skipif(not hasattr(select, "poll"), reason="POSIX file descriptors")


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    yield read_end, write_end
    for fd in (read_end, write_end):
        try:
            os.close(fd)
        except OSError:
            pass


def test_a_pipe_is_polled_on_the_loop_but_a_regular_file_and_dev_null_are_not(
    pipe: tuple[int, int], tmp_path: Path
) -> None:
    assert _pollable(pipe[0])
    session = tmp_path / "session.jsonl"
    session.write_bytes(b"{}\n")
    with session.open("rb") as file, open(os.devnull, "rb") as null:
        assert not _pollable(file.fileno())
        assert not _pollable(null.fileno())


def test_a_socket_and_a_terminal_are_polled_on_the_loop() -> None:
    left, right = socket.socketpair()
    controller, terminal = os.openpty()
    try:
        assert _pollable(left.fileno())
        assert _pollable(terminal)
    finally:
        left.close()
        right.close()
        os.close(controller)
        os.close(terminal)


@pytest.fixture
def writers() -> Iterator[list[FrameWriter]]:
    made: list[FrameWriter] = []
    yield made
    for writer in made:
        writer.send.close()
        writer._receive.close()


def _writer(out_fd: int, made: list[FrameWriter], on_output_closed: Callable[[], None] = lambda: None) -> FrameWriter:
    writer = FrameWriter(out_fd, FrameDecoder(), on_output_closed=on_output_closed)
    made.append(writer)
    return writer


@pytest.mark.anyio
async def test_a_small_frame_is_written_at_once_when_the_pipe_has_room(
    pipe: tuple[int, int], writers: list[FrameWriter]
) -> None:
    writer = _writer(pipe[1], writers)
    assert len(writer._write_now(b'{"id":1}\n')) == 0
    assert os.read(pipe[0], 100) == b'{"id":1}\n'


@pytest.mark.anyio
async def test_a_full_pipe_or_a_large_batch_is_left_for_the_writer_thread(
    pipe: tuple[int, int], writers: list[FrameWriter]
) -> None:
    writer = _writer(pipe[1], writers)
    large = b"x" * (select.PIPE_BUF + 1)
    assert bytes(writer._write_now(large)) == large  # could block: not written on the loop
    flags = fcntl.fcntl(pipe[1], fcntl.F_GETFL)
    fcntl.fcntl(pipe[1], fcntl.F_SETFL, flags | os.O_NONBLOCK)
    try:
        while True:
            os.write(pipe[1], b"y" * 4096)
    except BlockingIOError:
        pass
    fcntl.fcntl(pipe[1], fcntl.F_SETFL, flags)
    assert bytes(writer._write_now(b"{}\n")) == b"{}\n"  # the client is not reading: nothing written, nothing lost


@pytest.mark.anyio
async def test_a_write_to_a_closed_pipe_marks_the_output_lost(
    pipe: tuple[int, int], writers: list[FrameWriter]
) -> None:
    lost: list[bool] = []
    writer = _writer(pipe[1], writers, on_output_closed=lambda: lost.append(True))
    os.close(pipe[0])
    assert len(writer._write_now(b"{}\n")) == 0
    assert writer.closed and lost == [True]


async def _frames_from(fd: int) -> list[bytes]:
    send, receive = anyio.create_memory_object_stream[object](16)
    async with receive, anyio.create_task_group() as tg:
        tg.start_soon(read_frames, fd, FrameDecoder(), send)
        return [frame async for frame in receive]  # type: ignore[misc]


@pytest.mark.anyio
async def test_frames_from_a_pipe_arrive_in_order_and_eof_ends_the_stream(pipe: tuple[int, int]) -> None:
    os.write(pipe[1], b'{"id":1}\n{"id":2}\n{"id":3}')
    os.close(pipe[1])
    assert await _frames_from(pipe[0]) == [b'{"id":1}', b'{"id":2}', b'{"id":3}']


@pytest.mark.anyio
async def test_frames_from_a_regular_file_arrive_through_the_reader_thread(tmp_path: Path) -> None:
    session = tmp_path / "session.jsonl"
    session.write_bytes(b'{"id":1}\n{"id":2}\n')
    with session.open("rb") as file:
        assert await _frames_from(file.fileno()) == [b'{"id":1}', b'{"id":2}']
