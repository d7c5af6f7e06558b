"""The sidecar fixture of the protocol suites: one fresh process per test, in each framing, checked on the way out.

Chat suites override `sidecar` with `tests/stdio/chat_setup.py`'s (NDJSON, the fake provider wired in).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.sidecar_client import Sidecar

FRAMINGS = ["ndjson", "lsp"]


@pytest.fixture(params=FRAMINGS)
def sidecar(request: pytest.FixtureRequest, spawn_sidecar: Callable[..., Sidecar]) -> Iterator[Sidecar]:
    process = spawn_sidecar(framing=request.param)
    yield process
    assert process.call("ping") == {}, "the process must still answer after the test"
    assert process.all_stdout_frames_are_json_rpc()
    assert process.unmatched == [], "a request was answered twice"
    assert process.stop() == 0
