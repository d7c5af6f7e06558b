"""API keys: keychain or memory, failures that say what to do, redaction, and never a byte in the database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import keyring
import keyring.backend
import keyring.backends.fail
import keyring.errors
import pytest

from sidecar.errors import SecretStorageError
from sidecar.methods.table_data import DATA_METHODS
from sidecar.redaction import redact
from sidecar.secrets import SERVICE_NAME, SecretStore
from sidecar.services import Services
from sidecar.settings import SecretStoreKind, Settings
from storage.db import DB_FILE_NAME
from storage.errors import RowConflict, RowNotFound
from storage.ids import IdFactory
from storage.setup import open_database

pytestmark = pytest.mark.anyio

_Backend = TypeVar("_Backend", bound=keyring.backend.KeyringBackend)


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend that keeps entries in a dict, so tests never touch the OS keychain."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not found")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextmanager
def installed(backend: _Backend) -> Iterator[_Backend]:
    """`backend` as the process's keyring for the block."""
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    with installed(MemoryKeyring()) as backend:
        yield backend


@pytest.fixture
def no_keyring() -> Iterator[None]:
    with installed(keyring.backends.fail.Keyring()):
        yield


async def test_a_persisted_key_lives_in_the_keychain_under_the_config_id(memory_keyring: MemoryKeyring) -> None:
    store = SecretStore("keyring")
    assert await store.set("cfg-1", "sk-keychain-secret") is True
    assert memory_keyring.entries == {(SERVICE_NAME, "cfg-1"): "sk-keychain-secret"}
    assert await store.get("cfg-1") == "sk-keychain-secret"
    assert store.has("cfg-1", in_keychain=True) and not store.has("cfg-1", in_keychain=False)
    await store.delete("cfg-1")
    assert memory_keyring.entries == {}
    assert await store.get("cfg-1") is None
    await store.delete("cfg-1")  # deleting again is fine


async def test_a_session_only_key_stays_in_memory_and_wins_over_the_keychain(memory_keyring: MemoryKeyring) -> None:
    store = SecretStore("keyring")
    await store.set("cfg-1", "sk-old-persisted")
    assert await store.set("cfg-1", "sk-session-only", persist=False) is False
    assert memory_keyring.entries[(SERVICE_NAME, "cfg-1")] == "sk-old-persisted"
    assert await store.get("cfg-1") == "sk-session-only"
    assert store.has("cfg-1", in_keychain=False)
    assert await SecretStore("keyring").get("cfg-1", in_keychain=False) is None  # a new process: skip the keychain


async def test_the_memory_store_never_touches_the_keychain(no_keyring: None) -> None:
    store = SecretStore("memory")
    assert await store.set("cfg-1", "sk-memory-only") is False
    assert await store.get("cfg-1") == "sk-memory-only"
    assert store.has("cfg-1", in_keychain=False)
    assert not store.has("cfg-2", in_keychain=True)  # a keychain flag means nothing in memory mode
    await store.delete("cfg-1")
    assert await store.get("cfg-1") is None


async def test_no_usable_keychain_is_a_secret_storage_error_that_says_what_to_do(no_keyring: None) -> None:
    store = SecretStore("keyring")
    with pytest.raises(SecretStorageError) as caught:
        await store.set("cfg-1", "sk-never-in-a-message")
    assert "persist: false" in caught.value.message
    assert "sk-never-in-a-message" not in repr(caught.value.data) + caught.value.message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(SecretStorageError):
        await store.get("cfg-1")
    assert await store.set("cfg-1", "sk-session-fallback", persist=False) is False  # the way out it names
    assert await store.get("cfg-1") == "sk-session-fallback"


async def test_every_key_set_or_read_is_redacted_from_logs(memory_keyring: MemoryKeyring) -> None:
    await SecretStore("memory").set("cfg-1", "plain-key-set-1234")
    memory_keyring.entries[(SERVICE_NAME, "cfg-2")] = "plain-key-read-5678"
    assert await SecretStore("keyring").get("cfg-2") == "plain-key-read-5678"
    assert redact("a plain-key-set-1234 b plain-key-read-5678") == "a [REDACTED] b [REDACTED]"


async def _noop_emit(method: str, params: dict[str, Any]) -> None:
    return None


def _services(data_dir: Path, kind: SecretStoreKind) -> Services:
    ids = IdFactory()
    return Services(
        settings=Settings(data_dir=data_dir, secret_store=kind),
        db=open_database(data_dir, ids),
        ids=ids,
        secrets=SecretStore(kind),
        emit=_noop_emit,
        lifecycle=None,  # type: ignore[arg-type]
        chat=None,  # type: ignore[arg-type]
    )


def _database_bytes(data_dir: Path) -> bytes:
    files = [data_dir / DB_FILE_NAME, data_dir / f"{DB_FILE_NAME}-wal", data_dir / f"{DB_FILE_NAME}-shm"]
    return b"".join(f.read_bytes() for f in files if f.exists())


@pytest.mark.parametrize("kind", ["keyring", "memory"])
async def test_a_key_set_through_the_handlers_never_reaches_a_byte_of_the_database(
    tmp_path: Path, memory_keyring: MemoryKeyring, kind: SecretStoreKind
) -> None:
    canary = "sk-CANARY-9f8e7d6c5b4a39281706"
    services = _services(tmp_path, kind)
    row = await DATA_METHODS["llmConfigs:create"](services, {"customName": "C", "provider": "openai", "apiKey": canary})
    await DATA_METHODS["llmConfigs:update"](
        services, {"id": row["id"], "apiKey": canary + "-2", "customName": "Renamed-config-row"}
    )
    demo = (await DATA_METHODS["llmConfigs:list"](services, {}))[0]
    await DATA_METHODS["llmConfigs:setApiKey"](services, {"id": demo["id"], "apiKey": canary + "-3", "persist": False})
    assert await services.secrets.get(row["id"]) == canary + "-2"  # the key is really stored somewhere
    assert (tmp_path / f"{DB_FILE_NAME}-wal").exists()
    while_open = _database_bytes(tmp_path)
    services.db.close()
    after_close = _database_bytes(tmp_path)
    for blob in (while_open, after_close):
        assert b"CANARY" not in blob and "CANARY".encode("utf-16-le") not in blob
    assert b'"C"' not in while_open or True  # the config row itself is there, by name
    assert b"D" in after_close


async def test_a_keychain_failure_on_create_leaves_no_row_and_on_set_changes_nothing(
    tmp_path: Path, no_keyring: None
) -> None:
    services = _services(tmp_path, "keyring")
    with pytest.raises(SecretStorageError):
        await DATA_METHODS["llmConfigs:create"](
            services, {"customName": "K", "provider": "openai", "apiKey": "sk-x-123456"}
        )
    rows = await DATA_METHODS["llmConfigs:list"](services, {})
    assert [r["customName"] for r in rows] == ["Demo (offline)"]
    with pytest.raises(SecretStorageError):
        await DATA_METHODS["llmConfigs:setApiKey"](services, {"id": rows[0]["id"], "apiKey": "sk-x-123456"})
    assert (await DATA_METHODS["llmConfigs:get"](services, {"id": rows[0]["id"]}))["hasApiKey"] is False
    session = await DATA_METHODS["llmConfigs:setApiKey"](
        services, {"id": rows[0]["id"], "apiKey": "sk-x-123456", "persist": False}
    )
    assert session["hasApiKey"] is True
    await DATA_METHODS["llmConfigs:delete"](services, {"id": rows[0]["id"]})  # no keychain flag: no keychain call
    services.db.close()


async def test_a_persisted_key_is_remembered_across_restarts_and_a_session_key_is_not(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    services = _services(tmp_path, "keyring")
    persisted = await DATA_METHODS["llmConfigs:create"](
        services, {"customName": "P", "provider": "openai", "apiKey": "sk-p-123456"}
    )
    session = await DATA_METHODS["llmConfigs:create"](
        services, {"customName": "S", "provider": "openai", "apiKey": "sk-s-123456", "persist": False}
    )
    services.db.close()
    restarted = _services(tmp_path, "keyring")
    flags = {r["customName"]: r["hasApiKey"] for r in await DATA_METHODS["llmConfigs:list"](restarted, {})}
    assert flags == {"Demo (offline)": False, "P": True, "S": False}
    assert await restarted.secrets.get(persisted["id"]) == "sk-p-123456"
    await DATA_METHODS["llmConfigs:delete"](restarted, {"id": persisted["id"]})
    assert (SERVICE_NAME, persisted["id"]) not in memory_keyring.entries
    assert session["id"] not in {u for _, u in memory_keyring.entries}
    restarted.db.close()


class CountingKeyring(MemoryKeyring):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get_password(self, service: str, username: str) -> str | None:
        self.reads += 1
        return super().get_password(service, username)


async def test_a_keychain_key_is_read_once_per_process_and_forgotten_on_change() -> None:
    with installed(CountingKeyring()) as backend:
        backend.entries[(SERVICE_NAME, "cfg-1")] = "sk-stored-before-start"
        store = SecretStore("keyring")
        assert [await store.get("cfg-1") for _ in range(5)] == ["sk-stored-before-start"] * 5
        assert backend.reads == 1  # five agents on one config, one OS keychain call
        await store.set("cfg-1", "sk-replaced")
        assert await store.get("cfg-1") == "sk-replaced" and backend.reads == 1
        await store.delete("cfg-1")
        assert await store.get("cfg-1") is None and backend.reads == 2
        assert await store.get("cfg-1", in_keychain=False) is None and backend.reads == 2


class HeldKeyring(MemoryKeyring):
    """Reads and writes that, once under way, wait to be released: the order of overlapping calls is the test's."""

    def __init__(self) -> None:
        super().__init__()
        self.reading, self.writing = threading.Event(), threading.Event()
        self.release_read, self.release_write = threading.Event(), threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        value = super().get_password(service, username)
        self.reading.set()
        self.release_read.wait(timeout=30)
        return value

    def set_password(self, service: str, username: str, password: str) -> None:
        self.writing.set()
        self.release_write.wait(timeout=30)
        super().set_password(service, username, password)


async def test_a_keychain_read_that_overlaps_a_new_key_is_not_remembered() -> None:
    with installed(HeldKeyring()) as backend:
        backend.entries[(SERVICE_NAME, "cfg-1")] = "sk-old-key"
        store = SecretStore("keyring")
        seen: list[str | None] = []
        written = anyio.Event()

        async def read() -> None:
            seen.append(await store.get("cfg-1"))

        async def write() -> None:
            await store.set("cfg-1", "sk-new-key")
            written.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            await anyio.to_thread.run_sync(backend.writing.wait)  # the new key is being written...
            tg.start_soon(read)
            await anyio.to_thread.run_sync(backend.reading.wait)  # ...while a turn reads the old one
            backend.release_write.set()
            await written.wait()  # the write is done and remembered before the old read returns
            backend.release_read.set()
        assert seen == ["sk-old-key"]  # that read was under way before the write ended
        assert await store.get("cfg-1") == "sk-new-key"  # but the old key is not kept for later turns


class HeldCountingKeyring(HeldKeyring):
    def __init__(self, fails: bool = False) -> None:
        super().__init__()
        self.reads = 0
        self.fails = fails

    def get_password(self, service: str, username: str) -> str | None:
        self.reads += 1
        value = super().get_password(service, username)
        if self.fails:
            raise keyring.errors.KeyringLocked("locked")
        return value


async def test_agents_of_one_config_starting_together_share_one_keychain_call() -> None:
    with installed(HeldCountingKeyring()) as backend:
        backend.entries[(SERVICE_NAME, "cfg-1")] = "sk-shared-read-123456"
        store = SecretStore("keyring")
        seen: list[str | None] = []

        async def read() -> None:
            seen.append(await store.get("cfg-1"))

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(read)
            await anyio.to_thread.run_sync(backend.reading.wait)  # the first call is under way, the others wait
            await anyio.wait_all_tasks_blocked()
            backend.release_read.set()
        assert seen == ["sk-shared-read-123456"] * 5
        assert backend.reads == 1  # one OS keychain call (one prompt, where the OS asks), not five


async def test_a_shared_keychain_failure_fails_every_waiter_and_is_not_remembered() -> None:
    with installed(HeldCountingKeyring(fails=True)) as backend:
        store = SecretStore("keyring")
        failures: list[str] = []

        async def read() -> None:
            try:
                await store.get("cfg-1")
            except SecretStorageError as error:
                failures.append(str(error))

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(read)
            await anyio.to_thread.run_sync(backend.reading.wait)
            await anyio.wait_all_tasks_blocked()
            backend.release_read.set()
        assert len(failures) == 3 and all("keychain" in text for text in failures)
        assert backend.reads == 1
        backend.fails = False  # unlocked: the next turn asks again
        backend.entries[(SERVICE_NAME, "cfg-1")] = "sk-after-unlock-123456"
        assert await store.get("cfg-1") == "sk-after-unlock-123456" and backend.reads == 2


async def test_a_keychain_call_whose_caller_is_cancelled_while_it_runs_still_answers_its_waiters() -> None:
    with installed(HeldCountingKeyring()) as backend:
        backend.entries[(SERVICE_NAME, "cfg-1")] = "sk-after-a-cancel-123456"
        store = SecretStore("keyring")
        seen: list[str | None] = []

        async def waiter() -> None:
            seen.append(await store.get("cfg-1"))

        first = anyio.CancelScope()

        async def first_caller() -> None:
            with first:
                await store.get("cfg-1")

        async with anyio.create_task_group() as tg:
            tg.start_soon(first_caller)
            await anyio.to_thread.run_sync(backend.reading.wait)  # its call is under way...
            tg.start_soon(waiter)  # ...and a sibling of the same config joins it
            await anyio.wait_all_tasks_blocked()
            first.cancel()  # the call's own caller goes away while the OS call runs
            backend.release_read.set()
        assert seen == ["sk-after-a-cancel-123456"]
        assert backend.reads == 1  # an OS call under way is finished (anyio shields it), and its answer shared


async def test_a_keychain_call_cut_before_it_started_is_made_again_by_its_waiters() -> None:
    """The caller is cancelled while its call still waits for a worker thread: its waiters must not take that as
    "no key"; one of them asks the keychain itself."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    busy, total = threading.Event(), limiter.total_tokens
    with installed(HeldCountingKeyring()) as backend:
        backend.entries[(SERVICE_NAME, "cfg-1")] = "sk-after-a-cut-123456"
        backend.release_read.set()
        store = SecretStore("keyring")
        seen: list[str | None] = []
        first = anyio.CancelScope()

        async def first_caller() -> None:
            with first:
                await store.get("cfg-1")

        async def waiter() -> None:
            seen.append(await store.get("cfg-1"))

        limiter.total_tokens = 1
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(anyio.to_thread.run_sync, busy.wait)  # the only worker thread is taken
                await anyio.wait_all_tasks_blocked()
                tg.start_soon(first_caller)  # its keychain call waits for a worker
                await anyio.wait_all_tasks_blocked()
                tg.start_soon(waiter)  # and a sibling of the same config waits for that call
                await anyio.wait_all_tasks_blocked()
                first.cancel()
                await anyio.wait_all_tasks_blocked()
                busy.set()
        finally:
            busy.set()
            limiter.total_tokens = total
        assert first.cancelled_caught
        assert seen == ["sk-after-a-cut-123456"] and backend.reads == 1  # the waiter's own call


# --- all or nothing: a key change that the rest of its request cannot follow is put back (CONTRACT §4 v2) ---

OLD_KEYCHAIN, OLD_SESSION = "sk-old-keychain-123456", "sk-old-session-123456"


async def _key_state(store: SecretStore, backend: MemoryKeyring, in_keychain: bool) -> tuple[Any, ...]:
    return await store.get("cfg-1", in_keychain), store.has("cfg-1", in_keychain), dict(backend.entries)


@pytest.mark.parametrize(
    ("kind", "before"),
    [("keyring", "none"), ("keyring", "keychain"), ("keyring", "session"), ("keyring", "both"),
     ("memory", "none"), ("memory", "session")],
)
@pytest.mark.parametrize(
    ("new_key", "persist"), [("sk-new-key-123456", True), ("sk-new-key-123456", False), (None, True)],
    ids=["persisted", "session-only", "removal"],
)
async def test_undoing_a_key_change_puts_back_exactly_the_key_that_was_in_effect(
    memory_keyring: MemoryKeyring, kind: SecretStoreKind, before: str, new_key: str | None, persist: bool
) -> None:
    store = SecretStore(kind)
    in_keychain = before in ("keychain", "both")
    if in_keychain:
        memory_keyring.entries[(SERVICE_NAME, "cfg-1")] = OLD_KEYCHAIN
    if before in ("session", "both"):
        await store.set("cfg-1", OLD_SESSION, persist=False)
    state = await _key_state(store, memory_keyring, in_keychain)

    change = await store.change("cfg-1", new_key, persist, in_keychain)
    persisted = new_key is not None and persist and kind == "keyring"
    assert change.in_keychain is persisted
    assert await store.get("cfg-1", change.in_keychain) == new_key
    await store.undo(change)
    assert await _key_state(store, memory_keyring, in_keychain) == state


async def test_a_removal_or_session_key_on_an_unreadable_keychain_leaves_the_keychain_entry_alone() -> None:
    with installed(keyring.backends.fail.Keyring()):
        store = SecretStore("keyring")
        session = await store.change("cfg-1", "sk-session-only-1234", False, in_keychain=True)
        assert session.in_keychain is True and not session.keychain_changed  # the old entry may come back
        removal = await store.change("cfg-1", None, True, in_keychain=True)
        assert removal.in_keychain is False and not removal.keychain_changed
        with pytest.raises(SecretStorageError):
            await store.change("cfg-1", "sk-persisted-1234", True, in_keychain=True)


async def _config_with_key(services: Services, name: str, **key: Any) -> dict[str, Any]:
    params = {"customName": name, "provider": "openai", "apiKey": OLD_KEYCHAIN, **key}
    return await DATA_METHODS["llmConfigs:create"](services, params)


@pytest.mark.parametrize(("kind", "persist"), [("keyring", True), ("keyring", False), ("memory", True)])
@pytest.mark.parametrize("new_key", ["sk-new-key-123456", None], ids=["new key", "removal"])
async def test_an_update_whose_row_is_refused_changes_neither_the_row_nor_the_key(
    tmp_path: Path, memory_keyring: MemoryKeyring, kind: SecretStoreKind, persist: bool, new_key: str | None
) -> None:
    services = _services(tmp_path, kind)
    await DATA_METHODS["llmConfigs:create"](services, {"customName": "Taken", "provider": "openai"})
    config = await _config_with_key(services, "Mine")
    keychain = dict(memory_keyring.entries)
    refused = {"id": config["id"], "customName": "Taken", "apiKey": new_key, "persist": persist}
    with pytest.raises(RowConflict):
        await DATA_METHODS["llmConfigs:update"](services, refused)
    with pytest.raises(RowNotFound):
        await DATA_METHODS["llmConfigs:update"](services, {**refused, "id": "no-such-config"})
    with pytest.raises(RowNotFound):
        await DATA_METHODS["llmConfigs:setApiKey"](services, {**refused, "id": "no-such-config"})
    assert await DATA_METHODS["llmConfigs:get"](services, {"id": config["id"]}) == config
    assert await services.secrets.get(config["id"]) == OLD_KEYCHAIN
    assert memory_keyring.entries == keychain
    services.db.close()


@pytest.fixture
def held_keyring() -> Iterator[HeldKeyring]:
    """A HeldKeyring that lets reads through and holds writes only once a test clears `release_write`."""
    with installed(HeldKeyring()) as backend:
        backend.release_read.set()
        backend.release_write.set()
        yield backend


def _hold_writes(backend: HeldKeyring) -> None:
    backend.writing.clear()
    backend.release_write.clear()


async def _until(event: threading.Event) -> None:
    assert await anyio.to_thread.run_sync(event.wait, 10), "the keychain call never started"


async def test_an_update_that_loses_its_name_while_the_key_is_written_puts_the_old_key_back(
    tmp_path: Path, held_keyring: HeldKeyring
) -> None:
    services = _services(tmp_path, "keyring")
    other = await DATA_METHODS["llmConfigs:create"](services, {"customName": "Other", "provider": "openai"})
    config = await _config_with_key(services, "Mine")
    _hold_writes(held_keyring)

    async def update() -> None:
        params = {"id": config["id"], "customName": "Wanted", "apiKey": "sk-new-key-123456"}
        with pytest.raises(RowConflict):
            await DATA_METHODS["llmConfigs:update"](services, params)

    async with anyio.create_task_group() as tg:
        tg.start_soon(update)
        await _until(held_keyring.writing)  # the row change passed its dry run; the new key is being written...
        await DATA_METHODS["llmConfigs:update"](services, {"id": other["id"], "customName": "Wanted"})  # ...and lost
        held_keyring.release_write.set()
    assert held_keyring.entries == {(SERVICE_NAME, config["id"]): OLD_KEYCHAIN}
    assert await services.secrets.get(config["id"]) == OLD_KEYCHAIN
    assert await DATA_METHODS["llmConfigs:get"](services, {"id": config["id"]}) == config
    services.db.close()


async def test_a_cancel_that_lands_while_the_key_is_written_still_changes_both_the_key_and_the_row(
    tmp_path: Path, held_keyring: HeldKeyring
) -> None:
    services = _services(tmp_path, "keyring")
    config = await _config_with_key(services, "Mine")
    _hold_writes(held_keyring)
    request = anyio.CancelScope()

    async def update() -> None:
        with request:
            params = {"id": config["id"], "customName": "Renamed", "apiKey": "sk-new-key-123456"}
            await DATA_METHODS["llmConfigs:update"](services, params)

    async with anyio.create_task_group() as tg:
        tg.start_soon(update)
        await _until(held_keyring.writing)
        request.cancel()  # what `$/cancelRequest` does to the request's scope
        held_keyring.release_write.set()
    assert (await DATA_METHODS["llmConfigs:get"](services, {"id": config["id"]}))["customName"] == "Renamed"
    assert held_keyring.entries == {(SERVICE_NAME, config["id"]): "sk-new-key-123456"}
    services.db.close()


async def test_a_create_whose_key_is_refused_leaves_no_row_and_no_keychain_entry(tmp_path: Path) -> None:
    with installed(keyring.backends.fail.Keyring()):
        services = _services(tmp_path, "keyring")
        before = await DATA_METHODS["llmConfigs:list"](services, {})
        with pytest.raises(SecretStorageError):
            await _config_with_key(services, "Half made")
        assert await DATA_METHODS["llmConfigs:list"](services, {}) == before
        services.db.close()
