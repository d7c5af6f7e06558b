"""API keys: the OS keychain through `keyring` (one entry per LLM config id), or process memory only.

Keys never reach the database, a log line or an error message. The database only records *whether*
the keychain holds a key, so `hasApiKey` is answered without asking the keychain once per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import anyio.to_thread

from sidecar.errors import SecretStorageError
from sidecar.logs import logger
from sidecar.redaction import register_secret
from sidecar.settings import SecretStoreKind

SERVICE_NAME = "chat-sidecar"

_NO_KEYCHAIN = (
    "No usable OS keychain is available to store the API key. Unlock or set up the system keychain, "
    "or retry with persist: false to keep the key for this session only."
)


class SecretStore:
    """Keychain entries plus session-only keys held in this process (which win over the keychain).

    A key read from (or written to) the keychain is remembered for the process's life, so a turn does not
    ask the OS keychain once per agent (a thread hop and, on some systems, tens of ms each). The SDK
    client built from it holds the key in memory anyway. A change made outside this process is seen after
    a restart.
    """

    def __init__(self, kind: SecretStoreKind = "keyring") -> None:
        self.kind: SecretStoreKind = kind
        self._session: dict[str, str] = {}
        self._keychain_read: dict[str, str] = {}
        # Bumped before and after each keychain write: a read that overlapped one may be stale, so it is not kept.
        self._generation: dict[str, int] = {}
        self._reading: dict[str, _KeychainRead] = {}  # config id → the keychain call under way for it

    async def set(self, config_id: str, api_key: str, persist: bool = True) -> bool:
        """Store a key; return True when it went to the keychain, False when it is kept for this session only."""
        register_secret(api_key)
        if persist and self.kind == "keyring":
            await self._write_keychain(config_id, api_key)
            self._session.pop(config_id, None)
            return True
        self._session[config_id] = api_key
        return False

    async def change(self, config_id: str, api_key: str | None, persist: bool, in_keychain: bool) -> KeyChange:
        """Set (or, with None, remove) a config's key, keeping what it replaces so `undo` can put it back.

        `in_keychain` is the row's keychain flag before the change. A SecretStorageError leaves everything as it was.
        """
        old_session = self._session.get(config_id)
        if api_key is not None and persist and self.kind == "keyring":
            # Read first: overwriting the entry is the one step that cannot be undone without the old value.
            old_keychain = await self._read_keychain(config_id) if in_keychain else None
            await self.set(config_id, api_key)
            return KeyChange(config_id, True, old_session, keychain_changed=True, old_keychain=old_keychain)
        removing = api_key is None
        if removing:
            self._session.pop(config_id, None)
        else:
            await self.set(config_id, api_key, persist=False)
        if not in_keychain or self.kind != "keyring":
            return KeyChange(config_id, False, old_session)
        # A session-only key or a removal drops the persisted key so it cannot come back, best effort (see
        # `forget_persisted`): a keychain that cannot be read or refuses is left as it is.
        try:
            old_keychain = await self._read_keychain(config_id)
        except SecretStorageError:
            return KeyChange(config_id, not removing, old_session)
        if not await self.forget_persisted(config_id):
            return KeyChange(config_id, not removing, old_session)
        return KeyChange(config_id, False, old_session, keychain_changed=True, old_keychain=old_keychain)

    async def get(self, config_id: str, in_keychain: bool = True) -> str | None:
        """The key for a config, or None. `in_keychain=False` skips the keychain (and any OS prompt)."""
        key = self._session.get(config_id)
        if key is None and in_keychain and self.kind == "keyring":
            key = await self._read_keychain(config_id)
        if key:
            register_secret(key)
        return key or None

    def has(self, config_id: str, in_keychain: bool) -> bool:
        """`hasApiKey` for a row whose keychain flag is `in_keychain`; never touches the keychain."""
        return config_id in self._session or (in_keychain and self.kind == "keyring")

    async def delete(self, config_id: str, in_keychain: bool = True) -> bool:
        """Forget the key everywhere; best effort on the keychain (see `forget_persisted`)."""
        self._session.pop(config_id, None)
        return await self.forget_persisted(config_id) if in_keychain else True

    async def forget_persisted(self, config_id: str) -> bool:
        """Remove the keychain entry; return False (and log a warning) when the keychain refuses.

        Best effort on purpose: a broken keychain must not stop a user deleting a config or switching
        to a session-only key.
        """
        self._forget_read(config_id)
        if self.kind != "keyring":
            return True
        try:
            await _call_keyring("delete_password", SERVICE_NAME, config_id)
        except _NothingToDelete:
            return True  # nothing stored: already the state we want
        except SecretStorageError:
            logger.bind(llm_config_id=config_id).warning("Could not remove an API key from the OS keychain")
            return False
        finally:
            self._forget_read(config_id)
        return True

    async def undo(self, change: KeyChange) -> None:
        """Put back the key a `change` replaced; best effort on the keychain (a refusal is logged, not raised:
        the caller is already failing with an error of its own)."""
        if change.old_session is None:
            self._session.pop(change.config_id, None)
        else:
            self._session[change.config_id] = change.old_session
        if not change.keychain_changed:
            return
        if change.old_keychain is None:
            await self.forget_persisted(change.config_id)  # logs when it cannot
            return
        try:
            await self._write_keychain(change.config_id, change.old_keychain)
        except SecretStorageError:
            logger.bind(llm_config_id=change.config_id).warning("Could not put an API key back in the OS keychain")

    async def _read_keychain(self, config_id: str) -> str | None:
        key = self._keychain_read.get(config_id)
        if key is None:
            key = await self._shared_read(config_id)
        if key:
            register_secret(key)
        return key or None

    async def _shared_read(self, config_id: str) -> str | None:
        """One keychain call per config at a time: the agents of one config that start together wait for the same
        call (one OS prompt, not one per agent). A call cut short by its caller's cancellation is made again."""
        while True:
            generation = self._generation.get(config_id, 0)
            under_way = self._reading.get(config_id)
            if under_way is None or under_way.generation != generation:
                break
            await under_way.done.wait()
            if under_way.outcome == "read":
                return under_way.key
            if under_way.outcome == "failed":
                raise SecretStorageError(_NO_KEYCHAIN)
        read = self._reading[config_id] = _KeychainRead(generation)
        try:
            read.key = await _call_keyring("get_password", SERVICE_NAME, config_id)
            read.outcome = "read"
        except SecretStorageError:
            read.outcome = "failed"
            raise
        finally:
            if self._reading.get(config_id) is read:
                del self._reading[config_id]
            read.done.set()
        if read.key and self._generation.get(config_id, 0) == generation:
            self._keychain_read[config_id] = read.key
        return read.key

    async def _write_keychain(self, config_id: str, api_key: str) -> None:
        self._forget_read(config_id)
        try:
            await _call_keyring("set_password", SERVICE_NAME, config_id, api_key)
        finally:
            self._forget_read(config_id)
        self._keychain_read[config_id] = api_key

    def _forget_read(self, config_id: str) -> None:
        self._generation[config_id] = self._generation.get(config_id, 0) + 1
        self._keychain_read.pop(config_id, None)


@dataclass
class _KeychainRead:
    generation: int  # the config's write generation when the call started
    done: anyio.Event = field(default_factory=anyio.Event)
    outcome: Literal["read", "failed", "cut"] = "cut"  # "cut": its caller was cancelled before it returned
    key: str | None = None


@dataclass(frozen=True)
class KeyChange:
    """A key change made but not final: the caller commits the row with `in_keychain`, or `SecretStore.undo`es it.

    This is what makes `llmConfigs:update` all or nothing with its key (CONTRACT §4 v2): the key is changed
    first (the step most likely to fail), and if the row then cannot be written the old key is put back.
    """

    config_id: str
    in_keychain: bool  # the row's keychain flag once the change is committed
    old_session: str | None
    keychain_changed: bool = False
    old_keychain: str | None = None  # what the keychain held before (None: no entry), when it was changed


class _NothingToDelete(Exception):
    """The keychain had no entry to delete: not a failure."""


async def _call_keyring(operation: str, *args: str) -> Any:
    """Run a keyring call in a worker thread (a backend may block on an unlock prompt) and map its failures.

    keyring is imported there on first use, so start-up (and `--secret-store memory`) never pays for it.
    """

    def call() -> Any:
        import keyring

        return getattr(keyring, operation)(*args)

    try:
        return await anyio.to_thread.run_sync(call)
    except Exception as exc:
        import keyring.errors

        if isinstance(exc, keyring.errors.PasswordDeleteError):
            raise _NothingToDelete from None
        # Not only KeyringError: a backend pinned by PYTHON_KEYRING_BACKEND that cannot start raises RuntimeError,
        # and a Secret Service that goes away mid-call raises D-Bus and OS errors. All mean "no usable keychain".
        logger.bind(error_type=type(exc).__name__).warning("OS keychain call failed")
        raise SecretStorageError(_NO_KEYCHAIN) from None
