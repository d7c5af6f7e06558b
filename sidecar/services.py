"""What a method handler is given: the process's long-lived parts, passed in, never imported as globals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from sidecar.chat.events import Emit
from sidecar.settings import Settings
from storage.db import Database
from storage.ids import IdFactory

if TYPE_CHECKING:
    from sidecar.chat.orchestrator import ChatEngine
    from sidecar.chat.runs import Run, TurnKind
    from sidecar.lifecycle import Lifecycle
    from sidecar.secrets import SecretStore

CHAT_ENGINE_MODULE = "sidecar.chat.orchestrator"


@dataclass
class Services:
    settings: Settings
    db: Database
    ids: IdFactory
    secrets: SecretStore
    emit: Emit
    lifecycle: Lifecycle
    chat: ChatEngine | None = None
    """The chat engine once a chat method has needed it (`chat_engine()`); None until then."""

    async def chat_engine(self) -> ChatEngine:
        """The chat engine, made on first use: its import (~40 ms: engine, providers) stays off the start-up path.

        Made even when `shutdown` came meanwhile: it knows the process is stopping, so a turn read before the
        shutdown still answers, its agents claimed already cancelled.
        """
        if self.chat is None:
            # After the open: the open's worker thread imports storage, and two threads importing the same
            # modules at once can deadlock on circular imports.
            await self.db.wait_open()
            # In a worker thread, so requests already running keep being served meanwhile.
            engine_module = await anyio.to_thread.run_sync(import_module, CHAT_ENGINE_MODULE)
            if self.chat is None:  # another first chat request may have made it while this one imported
                lifecycle = self.lifecycle
                self.chat = engine_module.ChatEngine(
                    db=self.db, ids=self.ids, secrets=self.secrets, emit=self.emit, stopping=lambda: lifecycle.stopping
                )
        return self.chat

    @asynccontextmanager
    async def changing(
        self,
        affects: Callable[[Run], bool],
        conversation_id: str | None = None,
        kinds: tuple[TurnKind, ...] = ("turn", "retry", "auto"),
    ) -> AsyncIterator[None]:
        """Around a data change that may touch running agents: they are cancelled and settle first (with
        `conversation_id`, every turn of those `kinds` in that conversation)."""
        if self.chat is None:  # no engine yet: no agent has ever run in this process
            yield
            return
        async with self.chat.changing(affects, conversation_id, kinds):
            yield


Handler = Callable[[Services, dict[str, Any]], Awaitable[Any]]
"""A method: validated params (wire names) in, a JSON-ready result out; raises `sidecar.errors` types."""
