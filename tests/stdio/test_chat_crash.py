"""A sidecar killed with SIGKILL mid-reply: the next start marks the reply `interrupted`, and it can be retried."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import integrity_check
from tests.fake_provider import FakeProvider
from tests.sidecar_client import Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import API_KEY, assert_well_formed_updates, fake_config, messages, room_with, streamed_text

fake = chat_setup.fake  # the shared fixture


def test_a_reply_cut_by_a_kill_is_interrupted_after_restart_and_retry_completes_it(
    spawn_sidecar: Callable[..., Sidecar], fake: FakeProvider
) -> None:
    first = spawn_sidecar()
    room = room_with(first, [("Victim", fake_config(first, fake, "openai"), "gpt-words-300-pace-20")])
    first.request("processUserMessage", {"conversationId": room.conversation_id, "content": "Tell a long story"})
    streaming = first.wait_notification(lambda n: n["params"].get("status") == "streaming")
    user_id = streaming["params"]["userMessageId"]
    first.proc.kill()  # SIGKILL: no cleanup of any kind
    assert first.wait_exit() == -9

    second = spawn_sidecar(first.data_dir)
    rows = messages(second, room)
    assert [r["id"] for r in rows if r["role"] == "user"] == [user_id]
    partial = next(r for r in rows if r["role"] == "agent")
    assert partial["status"] == "interrupted" and partial["id"] == streaming["params"]["messageId"]
    assert partial["content"].startswith(streaming["params"]["delta"])

    # The memory secret store forgot the key with the process; a shorter reply keeps the test quick.
    agent = second.call("agents:get", {"id": room.members["Victim"]["agentId"]})
    second.call("llmConfigs:setApiKey", {"id": agent["llmConfigId"], "apiKey": API_KEY})
    second.call("agents:update", {"id": agent["id"], "model": "gpt-words-4"})
    outcome = second.call("chat:retryAgent", {"conversationId": room.conversation_id,
                                              "conversationAgentId": room.ca("Victim"), "userMessageId": user_id})
    assert outcome["status"] == "complete"
    rows = messages(second, room)
    assert [(r["role"], r["status"]) for r in rows] == [("user", "complete"), ("agent", "complete")]
    updates = second.updates(room.ca("Victim"))
    assert assert_well_formed_updates(updates)["messageId"] == rows[1]["id"]
    assert streamed_text(updates) == rows[1]["content"]
    assert second.stop() == 0
    assert integrity_check(first.data_dir) == "ok"
