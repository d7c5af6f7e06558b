"""An auto run cut by SIGKILL (CONTRACT §5b, crash guarantees): after a restart the rows of the run are settled or
`interrupted`, nothing acknowledged is lost, and the conversation starts a new run normally."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import integrity_check
from tests.fake_provider import FakeProvider
from tests.sidecar_client import Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import API_KEY, fake_config, messages, room_with

fake = chat_setup.fake  # the shared fixture


def test_an_auto_run_killed_mid_reply_leaves_settled_rows_and_the_next_run_starts_cleanly(
    spawn_sidecar: Callable[..., Sidecar], fake: FakeProvider
) -> None:
    first = spawn_sidecar()
    config = fake_config(first, fake, "openai")
    room = room_with(first, [("Ann", config, "gpt-words-4"), ("Ben", config, "gpt-words-300-pace-20")])
    first.call("conversations:update", {"id": room.conversation_id, "chatMode": "auto"})
    first.request("processUserMessage", {"conversationId": room.conversation_id, "content": "Discuss"})
    ann_done = first.wait_notification(
        lambda n: n["method"] == "agent:update" and n["params"]["status"] == "complete"
        and n["params"]["conversationAgentId"] == room.ca("Ann")
    )["params"]
    ben_streaming = first.wait_notification(
        lambda n: n["method"] == "agent:update" and n["params"]["status"] == "streaming"
        and n["params"]["conversationAgentId"] == room.ca("Ben")
    )["params"]
    run_id = ann_done["runId"]
    assert ben_streaming["runId"] == run_id
    first.proc.kill()  # SIGKILL: no cleanup of any kind
    assert first.wait_exit() == -9

    second = spawn_sidecar(first.data_dir)
    rows = messages(second, room)
    by_id = {r["id"]: r for r in rows}
    assert by_id[ann_done["messageId"]]["status"] == "complete"  # acknowledged: kept as it was
    cut = by_id[ben_streaming["messageId"]]
    assert cut["status"] == "interrupted" and cut["content"].startswith(ben_streaming["delta"])
    assert not [r for r in rows if r["status"] == "streaming"]
    assert [r["content"] for r in rows if r["role"] == "user"] == ["Discuss"]

    # The memory secret store forgot the key with the process; short replies and one message end the next run.
    second.call("llmConfigs:setApiKey", {"id": config["id"], "apiKey": API_KEY})
    second.call("agents:update", {"id": room.members["Ben"]["agentId"], "model": "gpt-words-4"})
    second.call("conversations:update", {"id": room.conversation_id, "autoSettings": {"maxMessages": 1}})
    result = second.call("chat:startAuto", {"conversationId": room.conversation_id})
    assert result["auto"]["runId"] != run_id and result["auto"]["stopReason"] == "max_messages"
    assert [r["status"] for r in result["agentResults"]] == ["complete"]
    assert second.stop() == 0
    assert integrity_check(first.data_dir) == "ok"
