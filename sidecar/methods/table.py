"""The method table: every wire method name → its handler. `tests/unit/test_method_table.py` checks it
against schema/openrpc.json, so a method cannot exist on one side only.
"""

from __future__ import annotations

from sidecar.methods import chat, lifecycle
from sidecar.methods.table_data import DATA_METHODS
from sidecar.services import Handler

METHODS: dict[str, Handler] = {
    "initialize": lifecycle.initialize,
    "ping": lifecycle.ping,
    "shutdown": lifecycle.shutdown,
    "exit": lifecycle.exit_process,
    **DATA_METHODS,
    "processUserMessage": chat.process_user_message,
    "buildAgentContext": chat.build_agent_context,
    "chat:cancel": chat.cancel,
    "chat:retryAgent": chat.retry_agent,
    "chat:startAuto": chat.start_auto,
    "chat:regenerate": chat.regenerate,
}
