"""API keys over the real subprocess: write-only, never on stdout, stderr, the log file or any byte of the data dir,
and a keychain that cannot be used is a `secret_storage` error that says what to do (CONTRACT §4).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keyring.backend
import keyring.errors
import pytest

from tests.fake_provider import FakeProvider
from tests.sidecar_client import Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import ask, fake_config, make_agent, make_room, result_for

fake = chat_setup.fake  # the shared fixture

KEYRING_FILE_ENV = "CHAT_SIDECAR_TEST_KEYRING_FILE"
FILE_KEYRING = f"{__name__}.FileKeyring"
FAIL_KEYRING = "keyring.backends.fail.Keyring"
SECRET_STORAGE = -32013


def _needs_the_file_keyring() -> None:
    """FileKeyring is test code, loaded by name in the sidecar; a frozen binary (CHAT_SIDECAR_COMMAND) cannot import
    it. tests/keychain runs the same cases against a real keychain there."""
    if os.environ.get("CHAT_SIDECAR_COMMAND"):
        pytest.skip("the file keychain stand-in cannot be imported by a frozen binary (see tests/keychain)")


class FileKeyring(keyring.backend.KeyringBackend):
    """A keychain for the sidecar subprocess (loaded through PYTHON_KEYRING_BACKEND): a JSON file outside the data dir.

    It lets a test see what reached "the keychain" and keep it across restarts, without touching the OS keychain.
    """

    priority = 1  # type: ignore[assignment]

    def _path(self) -> Path:
        return Path(os.environ[KEYRING_FILE_ENV])

    def _load(self) -> dict[str, str]:
        path = self._path()
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def _save(self, entries: dict[str, str]) -> None:
        self._path().write_text(json.dumps(entries), encoding="utf-8")

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        self._save({**self._load(), f"{service}/{username}": password})

    def delete_password(self, service: str, username: str) -> None:
        entries = self._load()
        if entries.pop(f"{service}/{username}", None) is None:
            raise keyring.errors.PasswordDeleteError("not found")
        self._save(entries)


def _closed_port() -> int:
    """A 127.0.0.1 port nothing listens on: connecting to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _canaries(prefix: str) -> list[str]:
    run = secrets.token_hex(8)
    return [f"{prefix}{run}-{route}-{secrets.token_hex(6)}" for route in ("create", "update", "persisted", "session")]


def _no_canary_anywhere(sidecar: Sidecar, canaries: list[str], log_file: Path) -> None:
    """Call after the process has stopped: the WAL is checkpointed and every file is closed."""
    stdout, stderr = bytes(sidecar.stdout_bytes), "\n".join(sidecar.stderr_lines)
    log = log_file.read_bytes()
    files = [p for p in sidecar.data_dir.rglob("*") if p.is_file()]
    assert files, "the data dir should hold the database"
    assert stderr and log, "debug logging should have written something to check"
    for canary in canaries:
        assert canary.encode() not in stdout, "an API key reached stdout"
        assert canary not in stderr, "an API key reached stderr"
        assert canary.encode() not in log, "an API key reached the log file"
        for path in files:
            assert canary.encode() not in path.read_bytes(), f"an API key reached {path.name}"


def _openai_turn(sidecar: Sidecar, config_id: str) -> dict[str, Any]:
    """One agent on the given config, one user message; the turn's single AgentResult."""
    agent = sidecar.call(
        "agents:create",
        {
            "name": "Keyed",
            "llmConfigId": config_id,
            "model": "gpt-4o-mini",
            "roleId": sidecar.call("roles:list")[0]["id"],
            "personalityId": sidecar.call("personalities:list")[0]["id"],
            "timeoutMs": 5000,
        },
    )
    conversation = sidecar.call("conversations:create")
    sidecar.call("conversationAgents:add", {"conversationId": conversation["id"], "agentId": agent["id"]})
    result = sidecar.call("processUserMessage", {"conversationId": conversation["id"], "content": "Use the key"})
    [agent_result] = result["agentResults"]
    return agent_result


@pytest.mark.parametrize("store", ["memory", "keyring"])
@pytest.mark.parametrize("prefix", ["sk-canary-", "plain-canary-"], ids=["key-shaped", "unshaped"])
def test_an_api_key_set_every_way_is_used_but_never_written_anywhere(
    spawn_sidecar: Callable[..., Sidecar], tmp_path: Path, store: str, prefix: str
) -> None:
    if store == "keyring":
        _needs_the_file_keyring()
    canaries = _canaries(prefix)
    created_key, updated_key, persisted_key, session_key = canaries
    log_file = tmp_path / "logs" / "sidecar.log"
    log_file.parent.mkdir()
    keyring_file = tmp_path / "keychain.json"
    sidecar = spawn_sidecar(
        args=("--secret-store", store, "--log-file", str(log_file)),
        env={"PYTHON_KEYRING_BACKEND": FILE_KEYRING, KEYRING_FILE_ENV: str(keyring_file)},
    )
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"

    created = sidecar.call(
        "llmConfigs:create", {"customName": "Canary", "provider": "openai", "baseUrl": base_url, "apiKey": created_key}
    )
    assert created["hasApiKey"] is True and "apiKey" not in created
    config_id = created["id"]
    updated = sidecar.call("llmConfigs:update", {"id": config_id, "apiKey": updated_key})
    assert updated["hasApiKey"] is True and "apiKey" not in updated
    persisted = sidecar.call("llmConfigs:setApiKey", {"id": config_id, "apiKey": persisted_key, "persist": True})
    assert persisted["hasApiKey"] is True and "apiKey" not in persisted
    if store == "keyring":
        assert persisted_key in keyring_file.read_text(encoding="utf-8"), "persist: true goes to the keychain"
    else:
        assert not keyring_file.exists(), "--secret-store memory never touches the keychain"
    session = sidecar.call("llmConfigs:setApiKey", {"id": config_id, "apiKey": session_key, "persist": False})
    assert session["hasApiKey"] is True and "apiKey" not in session
    for row in [sidecar.call("llmConfigs:get", {"id": config_id}), *sidecar.call("llmConfigs:list")]:
        assert "apiKey" not in row

    result = _openai_turn(sidecar, config_id)
    assert result["status"] == "error"
    assert result["errorType"] == "network", "the key was found and the request sent (no key would be configuration)"

    assert sidecar.stop() == 0
    _no_canary_anywhere(sidecar, canaries, log_file)


def test_a_persisted_key_survives_a_restart_and_a_session_only_key_does_not(
    spawn_sidecar: Callable[..., Sidecar], tmp_path: Path
) -> None:
    _needs_the_file_keyring()
    env = {"PYTHON_KEYRING_BACKEND": FILE_KEYRING, KEYRING_FILE_ENV: str(tmp_path / "keychain.json")}
    args = ("--secret-store", "keyring")
    first = spawn_sidecar(args=args, env=env)
    kept = first.call("llmConfigs:create", {"customName": "Kept", "provider": "openai", "apiKey": "kept-key-1234"})
    session = first.call("llmConfigs:create", {"customName": "Session", "provider": "openai"})
    params = {"id": session["id"], "apiKey": "session-1234", "persist": False}
    assert first.call("llmConfigs:setApiKey", params)["hasApiKey"] is True
    assert first.stop() == 0

    second = spawn_sidecar(args=args, env=env)
    assert second.call("llmConfigs:get", {"id": kept["id"]})["hasApiKey"] is True
    assert second.call("llmConfigs:get", {"id": session["id"]})["hasApiKey"] is False


@pytest.fixture
def no_keychain(spawn_sidecar: Callable[..., Sidecar]) -> Sidecar:
    """A sidecar asked to use the OS keychain on a machine where it cannot be used."""
    return spawn_sidecar(args=("--secret-store", "keyring"), env={"PYTHON_KEYRING_BACKEND": FAIL_KEYRING})


def test_set_api_key_without_a_usable_keychain_is_a_secret_storage_error_that_says_what_to_do(
    no_keychain: Sidecar,
) -> None:
    config = no_keychain.call("llmConfigs:create", {"customName": "No keychain", "provider": "openai"})
    error = no_keychain.call_error("llmConfigs:setApiKey", {"id": config["id"], "apiKey": "sk-unstored-1234"})
    assert (error.code, error.kind) == (SECRET_STORAGE, "secret_storage")
    assert "keychain" in error.message.lower() and "persist: false" in error.message
    assert "sk-unstored" not in error.message
    assert no_keychain.call("llmConfigs:get", {"id": config["id"]}) == config, "the row is unchanged"


def test_a_session_only_key_works_without_a_usable_keychain(no_keychain: Sidecar) -> None:
    config = no_keychain.call("llmConfigs:create", {"customName": "Session", "provider": "openai"})
    params = {"id": config["id"], "apiKey": "sk-session-1234", "persist": False}
    stored = no_keychain.call("llmConfigs:setApiKey", params)
    assert stored["hasApiKey"] is True
    assert no_keychain.call("llmConfigs:get", {"id": config["id"]})["hasApiKey"] is True


def test_creating_a_config_with_a_key_the_keychain_refuses_creates_nothing(no_keychain: Sidecar) -> None:
    before = no_keychain.call("llmConfigs:list")
    params = {"customName": "Half made", "provider": "openai", "apiKey": "sk-unstored-1234"}
    assert no_keychain.call_error("llmConfigs:create", params).kind == "secret_storage"
    assert no_keychain.call("llmConfigs:list") == before


def test_updating_a_config_with_a_key_the_keychain_refuses_changes_nothing(no_keychain: Sidecar) -> None:
    config = no_keychain.call("llmConfigs:create", {"customName": "Before", "provider": "openai"})
    params = {"id": config["id"], "customName": "After", "apiKey": "sk-unstored-1234"}
    assert no_keychain.call_error("llmConfigs:update", params).kind == "secret_storage"
    assert no_keychain.call("llmConfigs:get", {"id": config["id"]}) == config


@pytest.mark.parametrize("store", ["memory", "keyring"])
@pytest.mark.parametrize("new_key", ["sk-new-never-used-1234", None], ids=["new key", "removal"])
def test_an_update_with_a_key_and_a_taken_name_is_a_conflict_and_the_old_key_stays_in_effect(
    spawn_sidecar: Callable[..., Sidecar], tmp_path: Path, fake: FakeProvider, store: str, new_key: str | None
) -> None:
    """CONTRACT §4 (v2): `llmConfigs:update` is all or nothing, its key included."""
    if store == "keyring":
        _needs_the_file_keyring()
    keyring_file = tmp_path / "keychain.json"
    env = {"PYTHON_KEYRING_BACKEND": FILE_KEYRING, KEYRING_FILE_ENV: str(keyring_file)}
    sidecar = spawn_sidecar(args=("--secret-store", store), env=env)
    old_key = "sk-old-in-effect-1234"
    sidecar.call("llmConfigs:create", {"customName": "Taken", "provider": "openai"})
    config = fake_config(sidecar, fake, "openai", "Mine", api_key=old_key)
    keychain = keyring_file.read_bytes() if store == "keyring" else None

    error = sidecar.call_error("llmConfigs:update", {"id": config["id"], "customName": "Taken", "apiKey": new_key})
    assert error.kind == "conflict"
    assert sidecar.call("llmConfigs:get", {"id": config["id"]}) == config
    if keychain is not None:
        assert keyring_file.read_bytes() == keychain, "the keychain entry is unchanged"
    room = make_room(sidecar, [make_agent(sidecar, "Keyed", config, "gpt-4o-mini")])
    assert result_for(ask(sidecar, room, "Which key?"), room.ca("Keyed"))["status"] == "complete"
    assert [r.headers["authorization"] for r in fake.requests] == [f"Bearer {old_key}"]


@pytest.mark.parametrize("placeholder", ["here", "ollama"])
def test_a_placeholder_key_shorter_than_12_characters_never_alters_a_reply(
    spawn_sidecar: Callable[..., Sidecar], fake: FakeProvider, placeholder: str
) -> None:
    """CONTRACT §4 (v2): such keys are never searched for, and a reply is never altered by redaction anyway."""
    sidecar = spawn_sidecar()
    config = fake_config(sidecar, fake, "openai", api_key=placeholder)
    room = make_room(sidecar, [make_agent(sidecar, "Local", config, "gpt-4o-mini")])
    result = ask(sidecar, room, f"is {placeholder} there")
    assert result_for(result, room.ca("Local"))["status"] == "complete"
    replies = [m["content"] for m in sidecar.call("messages:list", {"conversationId": room.conversation_id})]
    assert replies[-1] == f'Fake reply to "is {placeholder} there".'
    assert [r.headers["authorization"] for r in fake.requests] == [f"Bearer {placeholder}"]


@pytest.mark.parametrize("store", ["keyring", "memory"])
def test_initialize_reports_the_secret_store_in_use(spawn_sidecar: Callable[..., Sidecar], store: str) -> None:
    sidecar = spawn_sidecar(args=("--secret-store", store), env={"PYTHON_KEYRING_BACKEND": FAIL_KEYRING})
    assert sidecar.call("initialize")["secretStorage"] == store
