"""Frozen run-time settings, made once from the command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

LogLevel = Literal["debug", "info", "warning", "error"]
SecretStoreKind = Literal["keyring", "memory"]

APP_NAME = "chat-sidecar"


def default_data_dir() -> Path:
    import platformdirs  # only without --data-dir (Electron always passes one): ~10 ms off the start

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    log_level: LogLevel = "info"
    log_file: Path | None = None
    secret_store: SecretStoreKind = "keyring"
