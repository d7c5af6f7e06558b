"""What a method handler is given: the process's long-lived parts, passed in, never imported as globals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sidecar.settings import Settings
from storage.db import Database
from storage.ids import IdFactory

if TYPE_CHECKING:
    from sidecar.chat.orchestrator import ChatEngine
    from sidecar.lifecycle import Lifecycle
    from sidecar.secrets import SecretStore

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Send a notification (`agent:update`, `all:complete`) to the client."""


@dataclass
class Services:
    settings: Settings
    db: Database
    ids: IdFactory
    secrets: SecretStore
    emit: Emit
    lifecycle: Lifecycle
    chat: ChatEngine


Handler = Callable[[Services, dict[str, Any]], Awaitable[Any]]
"""A method: validated params (wire names) in, a JSON-ready result out; raises `sidecar.errors` types."""
