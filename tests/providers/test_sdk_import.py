"""The first use of an SDK imports it once, in a worker thread, and every caller waits for the whole import."""

from __future__ import annotations

import dataclasses
import gc
import sys
import threading
from pathlib import Path

import anyio
import pytest

from sidecar.providers import demo, factory, registry

pytestmark = pytest.mark.anyio

# A stand-in SDK whose import stops half-way until the test lets it finish.
SLOW_MODULE = f"""
import sys
events = sys.modules[{__name__!r}].EVENTS
events["started"].set()
events["gate"].wait(30)
done = True
"""
EVENTS: dict[str, threading.Event] = {}


async def test_callers_during_the_first_import_wait_for_all_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "slow_fake_sdk_for_import_test"
    (tmp_path / f"{name}.py").write_text(SLOW_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.PROVIDERS, "slowsdk", dataclasses.replace(demo.SPEC, name="slowsdk", sdk_module=name))
    monkeypatch.setitem(EVENTS, "started", threading.Event())
    monkeypatch.setitem(EVENTS, "gate", threading.Event())
    returned: list[bool] = []
    freezes: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(name in factory._imported))

    async def use() -> None:
        await factory.import_sdk("slowsdk")
        returned.append(getattr(sys.modules[name], "done", False))  # the whole module, not half of it

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(use)
            await anyio.to_thread.run_sync(EVENTS["started"].wait, 30)
            assert name in sys.modules  # half-imported: the trap a plain sys.modules check falls into
            tg.start_soon(use)
            await anyio.wait_all_tasks_blocked()
            assert returned == []
            EVENTS["gate"].set()
    finally:
        sys.modules.pop(name, None)
        factory._imported.discard(name)
    assert returned == [True, True]
    assert freezes == [True]  # once, after the import: its long-lived objects leave the collector's scans
