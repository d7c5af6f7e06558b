"""A private, real Secret Service for tests: its own D-Bus session bus and gnome-keyring daemon in a temp home.

The bus configuration lists no service directories, so nothing is ever started on demand: in particular no unlock
prompter, so a locked collection refuses at once instead of waiting for a person. Every call made from here has a
timeout, and both daemons are stopped by the process ids they reported.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 20.0
CALL_TIMEOUT_S = 10.0
PASSWORD = "keychain-test-password"  # the login collection's; only this temp keychain ever uses it
REQUIRED = {"dbus-daemon": "dbus", "gnome-keyring-daemon": "gnome-keyring", "secret-tool": "libsecret-tools"}

_SECRETS = "org.freedesktop.secrets"
_SERVICE_PATH = "/org/freedesktop/secrets"
_DEFAULT_COLLECTION = "/org/freedesktop/secrets/aliases/default"

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def why_unavailable() -> str | None:
    """The reason no Secret Service can be started on this machine, or None when one can."""
    if not sys.platform.startswith("linux"):
        return "a Secret Service over D-Bus is Linux-only"
    missing = sorted({package for binary, package in REQUIRED.items() if shutil.which(binary) is None})
    if missing:
        return f"no Secret Service to test against: apt-get install {' '.join(missing)}"
    try:
        import jeepney  # noqa: F401  (keyring's own D-Bus library on Linux)
    except ImportError:
        return "jeepney (a keyring dependency on Linux) is not installed"
    return None


class SecretServiceError(RuntimeError):
    """The test Secret Service could not be started or driven; the message carries the daemons' own words."""


class SecretService:
    """One private session bus with gnome-keyring's Secret Service on it, its login collection unlocked."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.address = ""
        self._bus_pid: int | None = None
        self._keyring_pid: int | None = None

    # --- life cycle ---
    def start(self) -> SecretService:
        for name in ("home", "config", "data", "run"):
            (self.root / name).mkdir(mode=0o700, parents=True, exist_ok=True)
        config = self.root / "bus.conf"
        config.write_text(_BUS_CONFIG.format(socket=self.root / "run" / "bus"), encoding="utf-8")
        # --fork returns once the bus listens; the daemon's stderr goes to a file, never a pipe it would hold open.
        out = self._run("dbus-daemon", f"--config-file={config}", "--fork", "--print-address=1", "--print-pid=1")
        address, pid = out.split()[:2]
        self.address, self._bus_pid = address, int(pid)
        self.unlock(replace=False)
        return self

    def stop(self) -> None:
        for pid in (self._keyring_pid, self._bus_pid):
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        self._keyring_pid = self._bus_pid = None

    def unlock(self, replace: bool = True) -> None:
        """Start (or, with `replace`, restart) the keyring daemon with the login collection unlocked.

        gnome-keyring has no public unlock call without a prompt; a daemon started with `--unlock` reads the
        password on stdin. It claims its bus name a moment after it returns: wait for that name's owner to change.
        """
        from jeepney import MatchRule, message_bus
        from jeepney.io.blocking import open_dbus_connection

        rule = MatchRule(type="signal", sender="org.freedesktop.DBus", interface="org.freedesktop.DBus",
                         member="NameOwnerChanged", path="/org/freedesktop/DBus")
        rule.add_arg_condition(0, _SECRETS)
        with open_dbus_connection(self.address) as bus:
            bus.send_and_get_reply(message_bus.AddMatch(rule), timeout=CALL_TIMEOUT_S)
            with bus.filter(rule, bufsize=16) as owner_changes:
                old_owner = _owner(bus, _SECRETS)
                args = ["--replace"] if replace else []
                self._run("gnome-keyring-daemon", *args, "--unlock", "--components=secrets", stdin=PASSWORD)
                while (owner := _owner(bus, _SECRETS)) in (None, old_owner):
                    try:
                        bus.recv_until_filtered(owner_changes, timeout=START_TIMEOUT_S)
                    except TimeoutError:
                        raise SecretServiceError("gnome-keyring-daemon never claimed the Secret Service") from None
            reply = bus.send_and_get_reply(message_bus.GetConnectionUnixProcessID(owner), timeout=CALL_TIMEOUT_S)
            self._keyring_pid = int(reply.body[0])
        if self.is_locked():
            raise SecretServiceError("the login collection is still locked after --unlock")

    def lock(self) -> None:
        """Lock the default collection, as a screen lock or `secret-tool lock` does."""
        self._call(_SERVICE_PATH, "org.freedesktop.Secret.Service", "Lock", "ao", ([_DEFAULT_COLLECTION],))
        if not self.is_locked():
            raise SecretServiceError("the default collection did not lock")

    def is_locked(self) -> bool:
        body = self._call(_DEFAULT_COLLECTION, "org.freedesktop.DBus.Properties", "Get", "ss",
                          ("org.freedesktop.Secret.Collection", "Locked"))
        return bool(body[0][1])

    # --- what a client sees ---
    @property
    def client_env(self) -> dict[str, str]:
        """What a process needs to find this keychain."""
        return {"DBUS_SESSION_BUS_ADDRESS": self.address}

    def lookup(self, service: str, username: str) -> str | None:
        """The stored password as an independent client (libsecret's secret-tool) reads it; None when absent."""
        if self.is_locked():  # secret-tool would answer "absent" for a locked collection
            raise SecretServiceError("cannot look into a locked keychain; unlock() it first")
        result = subprocess.run(
            ["secret-tool", "lookup", "service", service, "username", username],
            env=self._env(), capture_output=True, timeout=CALL_TIMEOUT_S, check=False,
        )
        if result.returncode != 0:
            if result.stderr.strip():
                raise SecretServiceError(f"secret-tool lookup failed: {result.stderr.decode(errors='replace')}")
            return None
        return result.stdout.decode()

    # --- helpers ---
    def _env(self) -> dict[str, str]:
        """A minimal environment: no DISPLAY or WAYLAND_DISPLAY, so no prompt could ever show anywhere."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root / "home"),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "data"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "DBUS_SESSION_BUS_ADDRESS": self.address,
            "LANG": "C.UTF-8",
        }

    def _run(self, *command: str, stdin: str = "") -> str:
        log = self.root / f"{command[0]}.log"
        with open(log, "ab") as errors:
            try:
                result = subprocess.run(
                    command, input=stdin.encode(), stdout=subprocess.PIPE, stderr=errors, env=self._env(),
                    timeout=START_TIMEOUT_S, check=False,
                )
            except subprocess.TimeoutExpired:
                raise SecretServiceError(f"{command[0]} did not start within {START_TIMEOUT_S} s") from None
        if result.returncode != 0:
            raise SecretServiceError(f"{command[0]} exited {result.returncode}: {log.read_text(errors='replace')}")
        return result.stdout.decode()

    def _call(
        self, path: str, interface: str, method: str, signature: str, body: tuple[Any, ...],
        destination: str = _SECRETS,
    ) -> tuple[Any, ...]:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
        from jeepney.wrappers import unwrap_msg

        message = new_method_call(DBusAddress(path, bus_name=destination, interface=interface), method, signature, body)
        with open_dbus_connection(self.address) as connection:
            return unwrap_msg(connection.send_and_get_reply(message, timeout=CALL_TIMEOUT_S))


def _owner(bus: Any, name: str) -> str | None:
    """The unique connection name that owns `name` on the bus, or None."""
    from jeepney import message_bus

    reply = bus.send_and_get_reply(message_bus.GetNameOwner(name), timeout=CALL_TIMEOUT_S)
    return reply.body[0] if reply.header.message_type.name == "method_return" else None
