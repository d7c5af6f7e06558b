"""`agent:update` and `all:complete`: sequence numbers, the one-terminal-update rule, and delta coalescing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # start-up imports this module (its event names); the records module is ~7 ms of dataclasses
    from storage.records import ParticipantRecord

Emit = Callable[[str, dict[str, Any]], Awaitable[bool | None]]
"""Send a notification to the client; returns once it is queued (True), or False when it was dropped (the process
is stopping and the client has stopped reading)."""

TERMINAL_STATUSES = frozenset({"complete", "error", "cancelled", "skipped"})
# At most 20 streaming updates a second per agent: text arriving faster is sent in one delta.
COALESCE_SECONDS = 0.05


class AgentUpdates:
    """The updates of one agent in one turn: `seq` from 1, nothing after the terminal one.

    `seq` counts updates actually handed to the writer: an update whose send was cancelled or dropped takes no
    number, so the client never sees a gap.
    """

    def __init__(
        self, emit: Emit, participant: ParticipantRecord, user_message_id: str, tags: dict[str, Any] | None = None
    ) -> None:
        self._emit = emit
        self._base = {
            "conversationId": participant.conversation_id,
            "conversationAgentId": participant.conversation_agent_id,
            "agentId": participant.agent_id,
            "agentName": participant.agent_name,
            "userMessageId": user_message_id,
            **(tags or {}),
        }
        self._seq = 0
        self.settled = False

    async def send(self, status: str, **fields: Any) -> None:
        if self.settled:
            raise RuntimeError("an agent's update came after its terminal update")
        params = {**self._base, "status": status, "seq": self._seq + 1}
        params.update({key: value for key, value in fields.items() if value is not None})
        if await self._emit("agent:update", params) is not False:
            self._seq += 1  # a dropped update takes no number: whatever the client does get stays contiguous
        self.settled = status in TERMINAL_STATUSES


async def send_all_complete(emit: Emit, conversation_id: str, user_message_id: str) -> None:
    await emit("all:complete", {"conversationId": conversation_id, "userMessageId": user_message_id})
