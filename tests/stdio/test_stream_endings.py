"""How a reply ends, over the real subprocess (CONTRACT §5 "How a reply ends"): a stream that stops without the
provider's final event is a dropped stream, a whole JSON answer to a streaming request is one complete reply, and
the stop reason reaches the row.

The fake's model names pick the ending: ``nodone`` (no finish_reason/[DONE], no message_stop), ``jsonbody``
(200 application/json), ``stop-length`` / ``stop-filter``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fake_provider import FakeProvider
from tests.sidecar_client import Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import (
    Room,
    ask,
    assert_well_formed_updates,
    fake_config,
    messages,
    requests_for,
    result_for,
    room_with,
    streamed_text,
    turn_updates,
)

fake, sidecar = chat_setup.fake, chat_setup.sidecar  # the shared fixtures

MODEL_PREFIX = {"openai": "gpt", "anthropic": "claude"}
REPLY = 'Fake reply to "Hello there".'


def _turn(
    sidecar: Sidecar, fake: FakeProvider, provider: str, model: str
) -> tuple[Room, dict[str, Any], list[dict[str, Any]]]:
    """One agent, one turn: (room, its AgentResult, its updates)."""
    room = room_with(sidecar, [("Solo", fake_config(sidecar, fake, provider), model)])
    result = ask(sidecar, room, "Hello there")
    return room, result_for(result, room.ca("Solo")), turn_updates(sidecar, result["userMessageId"], room.ca("Solo"))


def _replies(sidecar: Sidecar, room: Room) -> list[dict[str, Any]]:
    return [r for r in messages(sidecar, room) if r["role"] == "agent"]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_stream_that_stops_without_its_final_event_after_some_text_ends_the_agent_in_error_with_the_text_kept(
    sidecar: Sidecar, fake: FakeProvider, provider: str
) -> None:
    model = f"{MODEL_PREFIX[provider]}-nodone-words-5"
    room, outcome, updates = _turn(sidecar, fake, provider, model)
    final = assert_well_formed_updates(updates)
    assert (final["status"], final["errorType"], final["retryable"]) == ("error", "network", True)
    assert (outcome["status"], outcome["errorType"]) == ("error", "network")
    assert "complete" not in {u["status"] for u in updates}
    [partial] = _replies(sidecar, room)
    assert partial["status"] == "error" and partial["content"] == streamed_text(updates) == REPLY
    assert len(requests_for(fake, model)) == 1, "text had arrived: no retry"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_stream_that_stops_without_its_final_event_before_any_text_is_retried_then_fails_as_network(
    sidecar: Sidecar, fake: FakeProvider, provider: str
) -> None:
    model = f"{MODEL_PREFIX[provider]}-nodone-words-0"
    room, outcome, updates = _turn(sidecar, fake, provider, model)
    final = assert_well_formed_updates(updates)
    assert [u["attempt"] for u in updates if u["status"] == "retrying"] == [2, 3]
    assert (final["status"], final["errorType"], final["retryable"]) == ("error", "network", True)
    assert (outcome["status"], outcome["errorType"]) == ("error", "network")
    assert len(requests_for(fake, model)) == 3
    assert _replies(sidecar, room) == []  # no text: no reply row, only the error notice
    notices = [r for r in messages(sidecar, room) if r["role"] == "system"]
    assert len(notices) == 1 and notices[0]["content"] == f"Agent Solo: {final['error']}"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_whole_json_answer_to_a_streaming_request_is_one_complete_reply_from_one_request(
    sidecar: Sidecar, fake: FakeProvider, provider: str
) -> None:
    model = f"{MODEL_PREFIX[provider]}-jsonbody"
    room, outcome, updates = _turn(sidecar, fake, provider, model)
    final = assert_well_formed_updates(updates)
    assert final["status"] == "complete" == outcome["status"]
    [reply] = _replies(sidecar, room)
    assert reply["status"] == "complete" and reply["content"] == streamed_text(updates) == REPLY
    assert reply["stopReason"] == "end"
    assert final["usage"]["outputTokens"] == len(REPLY.split())
    assert len(requests_for(fake, model)) == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize(
    ("ending", "stop_reason"), [("ok", "end"), ("stop-length", "max_tokens"), ("stop-filter", "content_filter")]
)
def test_a_finished_reply_is_complete_and_its_row_carries_the_stop_reason(
    sidecar: Sidecar, fake: FakeProvider, provider: str, ending: str, stop_reason: str
) -> None:
    model = f"{MODEL_PREFIX[provider]}-{ending}"
    room, outcome, updates = _turn(sidecar, fake, provider, model)
    assert assert_well_formed_updates(updates)["status"] == "complete" == outcome["status"]
    [reply] = _replies(sidecar, room)
    assert (reply["status"], reply["stopReason"], reply["content"]) == ("complete", stop_reason, REPLY)
