"""`conversations:export` and `conversations:import`: a conversation as a file, and back.

An import is checked and turned into rows in a worker thread, outside the query lane; its rows are then staged in
chunks, each a short unit of work, so other requests keep being answered; only the final copy, one transaction,
holds the lane (1.4–1.8 s for 100,000 messages on the 2-core build machine). Progress goes to the log: counts,
never text.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import anyio.to_thread

from sidecar.conversation_export import export_file
from sidecar.conversation_import import plan_import
from sidecar.logs import logger
from sidecar.services import Services
from storage.db import DatabaseUnavailable
from storage.repositories import transfer

STAGE_CHUNK = 5_000  # rows per unit of work while staging: a few milliseconds of the lane each
LOG_EVERY = 20_000


async def export_conversation(services: Services, params: dict[str, Any]) -> dict[str, str]:
    dump = await services.db.run(transfer.read_conversation, params["id"])
    exported_at = services.ids.next()[1]
    return await anyio.to_thread.run_sync(export_file, dump, params["format"], exported_at)


async def import_conversation(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    plan = await anyio.to_thread.run_sync(plan_import, params["content"], services.ids)
    total = len(plan.rows)
    log = logger.bind(method="conversations:import", messages=total, agents=len(plan.conversation.agents))
    log.info("import checked")
    table = await services.db.run(transfer.open_staging)
    try:
        for start in range(0, total, STAGE_CHUNK):
            await services.db.run(transfer.stage_messages, table, plan.rows[start : start + STAGE_CHUNK])
            staged = min(start + STAGE_CHUNK, total)
            if staged % LOG_EVERY == 0 or staged == total:
                log.bind(staged=staged).info("import progress")
        conversation = await services.db.run(transfer.import_conversation, services.ids, plan.conversation, table)
    finally:
        with anyio.CancelScope(shield=True), suppress(DatabaseUnavailable):  # closed: the temp table went with it
            await services.db.run(transfer.drop_staging, table)
    log.bind(conversationId=conversation["id"]).info("import done")
    return conversation
