"""`python -m bench.memprobe <chat-sidecar args>`: the sidecar with an in-process memory probe (Linux only).

Like `bench.lagprobe`, this runs the unchanged `sidecar.cli.main` with `sidecar.app.serve` wrapped; next to it
runs a task that answers the harness on two FIFOs in `$BENCH_MEM_FIFOS` (`ask`, `answer`, made by the harness):
one command line in, one JSON line out, so the harness synchronises on the answer, never on time.

- `stats`: VmRSS and VmHWM, what the allocators hold (glibc `mallinfo2`: in use, free inside the heap, mmapped;
  pymalloc's allocated blocks), SQLite's own allocations (`sqlite3_memory_used`, page cache included), the
  tracemalloc total when tracing, the collector's object count.
- `gc`: a full collection first, then `stats`.
- `trim`: `malloc_trim(0)` first (returns the free heap pages to the system), then `stats`: RSS that this
  gives back was fragmentation or free-list, not live data.
- `snapshot PATH`: a full collection, then `tracemalloc.take_snapshot().dump(PATH)`, then `stats`. Tracing is
  started by the harness with `PYTHONTRACEMALLOC=<frames>` (so allocations from start-up on are traced).

Nothing reaches stdout (the sidecar's protocol stream).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import sys
import tracemalloc
from pathlib import Path
from typing import Any


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
    )]


def _libc() -> Any:
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


def _sqlite() -> Any:
    """The libsqlite3 the `_sqlite3` module uses (dlopen of the same soname returns the loaded library)."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    lib.sqlite3_memory_highwater.restype = ctypes.c_int64
    lib.sqlite3_memory_highwater.argtypes = [ctypes.c_int]
    lib.sqlite3_db_status.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                      ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    return lib


SQLITE_DBSTATUS_CACHE_USED = 1


def _page_cache_bytes(sqlite: Any) -> int | None:
    """The page cache of the sidecar's one connection (`SQLITE_DBSTATUS_CACHE_USED`), when it is open."""
    models = sys.modules.get("storage.models")
    database = getattr(getattr(getattr(models, "Message", None), "_meta", None), "database", None)
    conn = getattr(getattr(database, "_state", None), "conn", None)
    if conn is None:
        return None
    # CPython's sqlite3.Connection starts with PyObject_HEAD, then the `sqlite3 *` handle.
    handle = ctypes.c_void_p.from_address(id(conn) + object.__basicsize__).value
    current, highest = ctypes.c_int(), ctypes.c_int()
    if sqlite.sqlite3_db_status(handle, SQLITE_DBSTATUS_CACHE_USED, current, highest, 0) != 0:
        return None
    return current.value


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def rss_by_mapping() -> dict[str, int]:
    """Resident KiB by kind of mapping: the main heap, Python's 1 MiB arenas, glibc's per-thread heaps (inside
    64 MiB reservations), thread stacks and other anonymous maps, and files."""
    totals: dict[str, int] = {}
    kind = "file"
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
            start, end = (int(x, 16) for x in head[0].split("-"))
            name = head[5] if len(head) > 5 else ""
            size = end - start
            if name == "[heap]":
                kind = "heap"
            elif name:
                kind = "file" if name.startswith("/") else "other"
            elif size == 1 << 20:
                kind = "py_arena"
            elif start % (64 << 20) == 0:
                kind = "thread_heap"
            else:
                kind = "anon_other"
        elif head[0] == "Rss:":
            totals[kind] = totals.get(kind, 0) + int(head[1])
    return totals


def stats(libc: Any, sqlite: Any) -> dict[str, Any]:
    info = libc.mallinfo2()
    out: dict[str, Any] = {
        "rss_kb": _status_kb("VmRSS"),
        "rss_anon_kb": _status_kb("RssAnon"),
        "rss_file_kb": _status_kb("RssFile"),
        "hwm_kb": _status_kb("VmHWM"),
        "heap_in_use": info.uordblks,  # malloc'd and not freed, main heap + arenas
        "heap_free": info.fordblks,  # free chunks kept inside the heap (fragmentation / free lists)
        "heap_arena": info.arena,  # bytes of heap obtained with sbrk/mmap'd arenas
        "mmapped": info.hblkhd,  # large blocks mmapped on their own
        "pymalloc_blocks": sys.getallocatedblocks(),
        "threads": len(os.listdir("/proc/self/task")),
    }
    if sqlite is not None:
        out["sqlite_used"] = sqlite.sqlite3_memory_used()
        out["sqlite_highwater"] = sqlite.sqlite3_memory_highwater(0)
        out["sqlite_page_cache"] = _page_cache_bytes(sqlite)
    if tracemalloc.is_tracing():
        out["traced"], out["traced_peak"] = tracemalloc.get_traced_memory()
    return out


def answer(command: str, libc: Any, sqlite: Any) -> dict[str, Any]:
    verb, _, arg = command.partition(" ")
    if verb in ("gc", "snapshot"):
        gc.collect()
    if verb == "trim":
        libc.malloc_trim(0)
    if verb == "snapshot":
        snapshot = tracemalloc.take_snapshot()
        snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)]).dump(arg)
    out = stats(libc, sqlite)
    out["maps"] = rss_by_mapping()
    if verb in ("gc", "snapshot"):
        out["gc_objects"] = len(gc.get_objects())  # not in `stats`: the list itself takes ~1 MB for a moment
    return out


def main() -> None:
    import anyio

    import sidecar.app
    from sidecar.cli import main as sidecar_main

    fifos = Path(os.environ["BENCH_MEM_FIFOS"])
    original = sidecar.app.serve
    libc, sqlite = _libc(), _sqlite()

    async def probe() -> None:
        # O_RDWR: a FIFO opened so never reports EOF while the harness is between commands.
        ask = os.open(fifos / "ask", os.O_RDWR | os.O_NONBLOCK)
        reply = os.open(fifos / "answer", os.O_RDWR)
        pending = b""
        while True:
            await anyio.wait_readable(ask)
            try:
                pending += os.read(ask, 4096)
            except BlockingIOError:
                continue
            while b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                os.write(reply, json.dumps(answer(line.decode(), libc, sqlite)).encode() + b"\n")

    async def serve(*args: Any) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(probe)
            await original(*args)
            tg.cancel_scope.cancel()

    sidecar.app.serve = serve  # cli.serve_stdio imports `serve` from sidecar.app when it runs
    sys.argv[0] = "chat-sidecar"
    sidecar_main()


class ProbeClient:
    """The harness's end: `ask("stats")` → the probe's JSON answer."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        for name in ("ask", "answer"):
            os.mkfifo(folder / name)
        self._ask = os.open(folder / "ask", os.O_RDWR)
        self._answer = os.open(folder / "answer", os.O_RDWR)
        self._pending = b""

    def ask(self, command: str) -> dict[str, Any]:
        os.write(self._ask, command.encode() + b"\n")
        while b"\n" not in self._pending:
            self._pending += os.read(self._answer, 1 << 16)
        line, _, self._pending = self._pending.partition(b"\n")
        return json.loads(line)

    def close(self) -> None:
        os.close(self._ask)
        os.close(self._answer)


if __name__ == "__main__":
    main()
