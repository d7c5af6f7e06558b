"""The real-keychain suite: one private Secret Service (D-Bus + gnome-keyring) for the session, and an environment
in which every sidecar the tests start finds it the way the desktop app would, by keyring's own detection.

Skipped, with the reason, where no Secret Service can be started (not Linux, or the packages are missing:
`apt-get install gnome-keyring dbus libsecret-tools`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.keychain.secret_service import SecretService, why_unavailable


@pytest.fixture(scope="session")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretService]:
    reason = why_unavailable()
    if reason is not None:
        pytest.skip(reason)
    service = SecretService(tmp_path_factory.mktemp("keychain"))
    try:
        service.start()
        yield service
    finally:
        service.stop()


@pytest.fixture
def keychain(secret_service: SecretService, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretService]:
    """The session's Secret Service, unlocked, as the one sidecars started by this test find."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", secret_service.address)
    yield secret_service
    if secret_service.is_locked():  # a test that locked it and failed before unlocking
        secret_service.unlock()


@pytest.fixture(autouse=True)
def _keyring_detects_its_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No backend pinned by the developer's environment or keyringrc: keyring picks one as it would for a user."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the keychain suite drives a Linux Secret Service")
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # where keyringrc.cfg would be read
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)  # no bus unless a test asks for `keychain`
