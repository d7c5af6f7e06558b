"""API keys in a real OS keychain (gnome-keyring's Secret Service over D-Bus), through the real sidecar process.

What the keychain holds is read with libsecret's `secret-tool`, an independent client; what the provider receives
is read off the fake provider's request log (CONTRACT §4 llmConfigs; SECURITY.md "Where API keys live").
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sidecar.secrets import SERVICE_NAME
from tests.fake_provider import FakeProvider
from tests.keychain.secret_service import SecretService
from tests.sidecar_client import Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import ask, fake_config, make_agent, make_room, result_for

fake = chat_setup.fake  # the shared fixture
KEYCHAIN = ("--secret-store", "keyring")
SECRET_STORAGE = -32013


def _key(label: str) -> str:
    return f"sk-{label}-{secrets.token_hex(8)}"


@pytest.fixture
def start(spawn_sidecar: Callable[..., Sidecar], tmp_path: Path) -> Callable[[], Sidecar]:
    """A sidecar on the test's data dir using the OS keychain; call again after `stop()` for a restart."""
    return lambda: spawn_sidecar(tmp_path / "data", args=KEYCHAIN)


def _sent_key(sidecar: Sidecar, fake: FakeProvider, config: dict[str, Any]) -> str | None:
    """Run one turn on `config`; the key the provider received (None: the turn failed before any request)."""
    seen = len(fake.requests)
    room = make_room(sidecar, [make_agent(sidecar, "Keyed", config, "gpt-4o-mini", timeoutMs=10_000)])
    outcome = result_for(ask(sidecar, room, "Which key?"), room.ca("Keyed"))
    requests = fake.requests[seen:]
    if not requests:
        assert outcome["errorType"] == "configuration", outcome
        return None
    assert outcome["status"] == "complete", outcome
    [request] = requests
    return request.headers["authorization"].removeprefix("Bearer ")


def _no_key_written(sidecar: Sidecar, keys: list[str]) -> None:
    stdout, stderr = bytes(sidecar.stdout_bytes), "\n".join(sidecar.stderr_lines)
    for key in keys:
        assert key.encode() not in stdout and key not in stderr, "an API key reached stdout or stderr"


def test_a_key_stored_in_the_keychain_survives_a_restart_and_is_what_the_provider_receives(
    keychain: SecretService, fake: FakeProvider, start: Callable[[], Sidecar]
) -> None:
    key = _key("kept")
    first = start()
    config = fake_config(first, fake, "openai", api_key=key)
    assert config["hasApiKey"] is True
    assert keychain.lookup(SERVICE_NAME, config["id"]) == key, "the key lives in the keychain, under the config id"
    assert first.stop() == 0

    second = start()
    assert second.call("llmConfigs:get", {"id": config["id"]})["hasApiKey"] is True
    assert _sent_key(second, fake, config) == key
    assert second.stop() == 0
    for process in (first, second):
        _no_key_written(process, [key])
    assert not any(key.encode() in path.read_bytes() for path in first.data_dir.rglob("*") if path.is_file())


@pytest.mark.parametrize("method", ["llmConfigs:setApiKey", "llmConfigs:update"])
def test_a_rotated_key_replaces_the_old_one_in_the_keychain_and_in_the_next_turn(
    keychain: SecretService, fake: FakeProvider, start: Callable[[], Sidecar], method: str
) -> None:
    old, new = _key("old"), _key("new")
    sidecar = start()
    config = fake_config(sidecar, fake, "openai", api_key=old)
    assert _sent_key(sidecar, fake, config) == old  # the old key is read and remembered by the process
    assert sidecar.call(method, {"id": config["id"], "apiKey": new})["hasApiKey"] is True
    assert keychain.lookup(SERVICE_NAME, config["id"]) == new
    assert _sent_key(sidecar, fake, config) == new
    assert sidecar.stop() == 0
    assert _sent_key(start(), fake, config) == new


def test_a_removed_key_and_a_deleted_config_leave_nothing_in_the_keychain(
    keychain: SecretService, fake: FakeProvider, start: Callable[[], Sidecar]
) -> None:
    sidecar = start()
    removed = fake_config(sidecar, fake, "openai", "removed", api_key=_key("removed"))
    deleted = fake_config(sidecar, fake, "openai", "deleted", api_key=_key("deleted"))
    assert sidecar.call("llmConfigs:update", {"id": removed["id"], "apiKey": None})["hasApiKey"] is False
    assert sidecar.call("llmConfigs:delete", {"id": deleted["id"]}) is None
    assert keychain.lookup(SERVICE_NAME, removed["id"]) is None
    assert keychain.lookup(SERVICE_NAME, deleted["id"]) is None
    assert _sent_key(sidecar, fake, removed) is None
    assert sidecar.stop() == 0
    assert start().call("llmConfigs:get", {"id": removed["id"]})["hasApiKey"] is False


def test_a_session_only_key_takes_over_and_the_persisted_one_leaves_the_keychain(
    keychain: SecretService, fake: FakeProvider, start: Callable[[], Sidecar]
) -> None:
    persisted, session = _key("persisted"), _key("session")
    sidecar = start()
    config = fake_config(sidecar, fake, "openai", api_key=persisted)
    sidecar.call("llmConfigs:setApiKey", {"id": config["id"], "apiKey": session, "persist": False})
    assert keychain.lookup(SERVICE_NAME, config["id"]) is None, "the persisted key must not come back"
    assert _sent_key(sidecar, fake, config) == session
    assert sidecar.stop() == 0
    assert start().call("llmConfigs:get", {"id": config["id"]})["hasApiKey"] is False


@pytest.mark.parametrize(
    ("new_key", "persist"), [(_key("refused"), True), (_key("refused"), False), (None, True)],
    ids=["persisted", "session-only", "removal"],
)
def test_an_update_with_a_key_and_a_taken_name_changes_nothing_in_the_keychain(
    keychain: SecretService, fake: FakeProvider, start: Callable[[], Sidecar], new_key: str | None, persist: bool
) -> None:
    """CONTRACT §4 (v2): `llmConfigs:update` is all or nothing, its key included."""
    old = _key("old")
    sidecar = start()
    sidecar.call("llmConfigs:create", {"customName": "Taken", "provider": "openai"})
    config = fake_config(sidecar, fake, "openai", "Mine", api_key=old)
    params = {"id": config["id"], "customName": "Taken", "apiKey": new_key, "persist": persist}
    assert sidecar.call_error("llmConfigs:update", params).kind == "conflict"
    assert sidecar.call("llmConfigs:get", {"id": config["id"]}) == config
    assert keychain.lookup(SERVICE_NAME, config["id"]) == old
    assert _sent_key(sidecar, fake, config) == old
    assert sidecar.stop() == 0
    assert _sent_key(start(), fake, config) == old


@pytest.fixture
def locked(keychain: SecretService) -> Iterator[SecretService]:
    """The keychain, to be locked by the test; unlocked again afterwards whatever happens."""
    try:
        yield keychain
    finally:
        if keychain.is_locked():
            keychain.unlock()


def test_a_locked_keychain_is_a_secret_storage_error_and_nothing_is_half_written(
    locked: SecretService, fake: FakeProvider, start: Callable[[], Sidecar]
) -> None:
    stored, refused = _key("stored"), _key("refused")
    sidecar = start()
    config = fake_config(sidecar, fake, "openai", "Before", api_key=stored)
    rows = sidecar.call("llmConfigs:list")
    locked.lock()

    attempts = [
        ("llmConfigs:create", {"customName": "Half made", "provider": "openai", "apiKey": refused}),
        ("llmConfigs:setApiKey", {"id": config["id"], "apiKey": refused}),
        ("llmConfigs:update", {"id": config["id"], "customName": "After", "apiKey": refused}),
    ]
    for method, params in attempts:
        error = sidecar.call_error(method, params)
        assert (error.code, error.kind) == (SECRET_STORAGE, "secret_storage"), method
        assert "keychain" in error.message.lower() and "persist: false" in error.message
        assert refused not in error.message and refused not in str(error.data)
    assert sidecar.call("llmConfigs:list") == rows, "no row was created or changed"

    locked.unlock()
    assert locked.lookup(SERVICE_NAME, config["id"]) == stored
    assert _sent_key(sidecar, fake, config) == stored
    assert sidecar.stop() == 0
    _no_key_written(sidecar, [stored, refused])


def test_a_session_only_key_still_works_while_the_keychain_is_locked_and_the_stored_key_is_left_alone(
    locked: SecretService, fake: FakeProvider, start: Callable[[], Sidecar]
) -> None:
    """The way out the secret_storage message names; dropping the persisted key is best effort."""
    stored, session = _key("stored"), _key("session")
    sidecar = start()
    config = fake_config(sidecar, fake, "openai", api_key=stored)
    locked.lock()
    params = {"id": config["id"], "apiKey": session, "persist": False}
    assert sidecar.call("llmConfigs:setApiKey", params)["hasApiKey"] is True
    assert _sent_key(sidecar, fake, config) == session
    locked.unlock()
    assert locked.lookup(SERVICE_NAME, config["id"]) == stored, "a keychain that refused is left as it was"


@pytest.mark.parametrize(
    "environment",
    [{}, {"PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring"}, {"DBUS_SESSION_BUS_ADDRESS": ""}],
    ids=["no session bus", "Secret Service pinned but no bus", "a bus address nothing listens on"],
)
def test_no_reachable_keychain_is_a_secret_storage_error_and_nothing_is_half_written(
    spawn_sidecar: Callable[..., Sidecar], tmp_path: Path, environment: dict[str, str]
) -> None:
    if environment.get("DBUS_SESSION_BUS_ADDRESS") == "":
        environment = {"DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path / 'no-bus'}"}
    sidecar = spawn_sidecar(args=KEYCHAIN, env=environment)
    config = sidecar.call("llmConfigs:create", {"customName": "Before", "provider": "openai"})
    rows = sidecar.call("llmConfigs:list")
    refused = _key("refused")
    for method, params in [
        ("llmConfigs:create", {"customName": "Half made", "provider": "openai", "apiKey": refused}),
        ("llmConfigs:setApiKey", {"id": config["id"], "apiKey": refused}),
        ("llmConfigs:update", {"id": config["id"], "customName": "After", "apiKey": refused}),
    ]:
        error = sidecar.call_error(method, params)
        assert (error.code, error.kind) == (SECRET_STORAGE, "secret_storage"), (method, error)
    assert sidecar.call("llmConfigs:list") == rows
    assert sidecar.stop() == 0
    _no_key_written(sidecar, [refused])
