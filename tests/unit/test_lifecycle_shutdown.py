"""How long `shutdown` waits for the requests read before it (CONTRACT §2: a turn in flight answers with its result)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from sidecar.lifecycle import SHUTDOWN_GRACE_SECONDS, SHUTDOWN_REQUEST_GRACE_SECONDS, Lifecycle
from sidecar.settings import Settings

pytestmark = pytest.mark.anyio

# Longer than a signal's grace, well inside a `shutdown` request's: a first turn on a slow machine, say.
SLOW_REQUEST_SECONDS = SHUTDOWN_GRACE_SECONDS + 0.5
assert SLOW_REQUEST_SECONDS < SHUTDOWN_REQUEST_GRACE_SECONDS - 1.0


async def _shutdown_beside_a_slow_request(tmp_path: Path, own_request: bool) -> list[str]:
    events: list[str] = []
    lifecycle = Lifecycle(Settings(data_dir=tmp_path), "memory", spawn=lambda *args: None)

    async def close() -> None:
        events.append("database closed")

    lifecycle.close_resources = close

    async def slow_request() -> None:
        await anyio.sleep(SLOW_REQUEST_SECONDS)  # the thing measured: a request still working when shutdown comes
        events.append("request answered")
        lifecycle.request_finished()

    async with anyio.create_task_group() as tg:
        lifecycle.request_started()
        tg.start_soon(slow_request)
        if own_request:
            lifecycle.request_started()  # the `shutdown` request counts itself
        await lifecycle.shutdown(own_request=own_request)
        if own_request:
            lifecycle.request_finished()
    return events


async def test_a_shutdown_request_lets_a_slow_request_read_before_it_answer_before_the_database_closes(
    tmp_path: Path,
) -> None:
    assert await _shutdown_beside_a_slow_request(tmp_path, own_request=True) == ["request answered", "database closed"]


async def test_a_signal_keeps_its_short_grace_so_the_process_still_exits_within_2_s(tmp_path: Path) -> None:
    assert await _shutdown_beside_a_slow_request(tmp_path, own_request=False) == [
        "database closed",
        "request answered",
    ]
