"""A conversation of 100,000 stored messages keeps answering (issue #12), from source or the frozen binary.

The history is written straight into the data dir's database through the storage layer (`bench/history_seed.py`,
one transaction) between two sidecar processes: the first makes the llm config, the agents and the conversation
through its own methods and stops; the rows are seeded; each test starts a sidecar on a copy of that data dir.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.history_seed import seed_history
from storage.db import DB_FILE_NAME
from tests.fake_provider import FakeProvider
from tests.sidecar_client import Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import API_KEY, Room, demo_config, fake_config, requests_for, room_with, turn_updates

fake = chat_setup.fake  # the shared fixture

STORED = 100_000
WORDS = (5, 20)  # ~17 estimated tokens a message: a few hundred fill the fake agent's window, 100,000 never do
FAKE_MODEL = "ok-long"  # not in the model catalogue: the default 8,192-token window (CONTRACT §5c)
DEFAULT_WINDOW = 8192
DEMO_WINDOW = 32000  # the catalogue's entry for `demo`
QUESTION = "Still with us after all these messages?"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, fake_provider: FakeProvider) -> tuple[Path, Room, str]:
    """A data dir holding one conversation (a fake-provider agent and a demo agent) with 100,000 messages."""
    data_dir = tmp_path_factory.mktemp("long-history") / "data"
    first = Sidecar(data_dir)
    try:
        config = fake_config(first, fake_provider, "openai")
        room = room_with(first, [("Oli", config, FAKE_MODEL), ("Dee", demo_config(first), "demo")])
    finally:
        assert first.stop() == 0
    seed_history(data_dir, room.conversation_id, [room.ca("Oli"), room.ca("Dee")], STORED, words=WORDS)
    return data_dir, room, config["id"]


@pytest.fixture
def launched(
    seeded: tuple[Path, Room, str], tmp_path: Path, spawn_sidecar: Callable[..., Sidecar]
) -> Iterator[tuple[Sidecar, Room]]:
    """A sidecar on a fresh copy of the seeded data dir, the config's key set again (the memory store forgot it)."""
    template, room, config_id = seeded
    data_dir = tmp_path / "data"
    shutil.copytree(template, data_dir)
    process = spawn_sidecar(data_dir)
    process.call("llmConfigs:setApiKey", {"id": config_id, "apiKey": API_KEY, "persist": False})
    yield process, room
    assert API_KEY.encode() not in bytes(process.stdout_bytes), "the API key reached stdout"
    assert process.unmatched == [], "a request was answered twice"


def _turn(process: Sidecar, room: Room) -> dict[str, Any]:
    # Generous: from source before history trimming, each agent's request carries the whole conversation.
    return process.call("processUserMessage", {"conversationId": room.conversation_id, "content": QUESTION},
                        timeout=240)


def _stored_rows(data_dir: Path, conversation_id: str) -> int:
    with sqlite3.connect(data_dir / DB_FILE_NAME) as connection:
        query = "SELECT count(*) FROM messages WHERE conversation_id = ?"
        return connection.execute(query, (conversation_id,)).fetchone()[0]


def test_a_conversation_of_100000_messages_still_answers_and_saves_the_replies(
    launched: tuple[Sidecar, Room], fake: FakeProvider
) -> None:
    process, room = launched
    result = _turn(process, room)
    assert (result["totalAgents"], result["successfulAgents"], result["failedAgents"]) == (2, 2, 0)
    replies = {r["conversationAgentId"]: r for r in result["agentResults"]}
    assert {r["status"] for r in replies.values()} == {"complete"}

    newest = process.call("messages:list", {"conversationId": room.conversation_id, "limit": 3})
    assert newest[0]["id"] == result["userMessageId"] and newest[0]["content"] == QUESTION
    saved = {row["conversationAgentId"]: row for row in newest[1:]}
    assert set(saved) == {room.ca("Oli"), room.ca("Dee")}
    for ca, row in saved.items():
        assert row["id"] == replies[ca]["messageId"]
        assert (row["role"], row["status"], row["replyToId"]) == ("agent", "complete", result["userMessageId"])
    assert f'You said: "{QUESTION}".' in saved[room.ca("Dee")]["content"]  # the demo quotes the newest question

    sent = requests_for(fake, FAKE_MODEL)
    assert len(sent) == 1
    last = sent[0].body["messages"][-1]
    assert last["role"] == "user" and last["content"].endswith(QUESTION)  # the trigger is always kept, last
    # The fake quotes the start of the last user turn it was sent (merged with the turns before it).
    assert saved[room.ca("Oli")]["content"] == f'Fake reply to "{last["content"][:40]}".'

    assert process.stop() == 0
    assert _stored_rows(process.data_dir, room.conversation_id) == STORED + 3  # the question and two replies


def test_the_history_is_trimmed_to_each_agents_budget_and_the_trim_is_reported(
    launched: tuple[Sidecar, Room], fake: FakeProvider
) -> None:
    process, room = launched
    result = _turn(process, room)
    assert result["successfulAgents"] == 2
    for name, window in (("Oli", DEFAULT_WINDOW), ("Dee", DEMO_WINDOW)):
        thinking = turn_updates(process, result["userMessageId"], room.ca(name))[0]
        assert thinking["status"] == "thinking"
        context = thinking["context"]
        assert 0 < context["tokens"] <= context["limit"] <= window, name
        assert context["droppedCount"] > 0, name

    # What the fake agent was sent fits its window: a few hundred messages, not 100,000 (a token is never
    # fewer than one character, so twice the window in characters is more than any fitted history can take).
    body = requests_for(fake, FAKE_MODEL)[0].body
    assert len(json.dumps(body["messages"])) < 2 * 4 * DEFAULT_WINDOW
    context = process.call("buildAgentContext", {"conversationId": room.conversation_id,
                                                 "agentId": room.ca("Oli"), "userMessageId": result["userMessageId"]})
    assert context["request"]["messages"][-1] == body["messages"][-1]  # (not all of it: calibration moved on)
    budget = context["budget"]
    assert budget["contextWindow"] == DEFAULT_WINDOW
    assert budget["systemTokens"] + budget["historyTokens"] + budget["reservedOutput"] <= budget["contextWindow"]
    assert budget["keptCount"] >= 1 and budget["droppedCount"] > 0
    # That turn's snapshot: the 100,000 stored messages and the question; each is either kept or dropped.
    assert budget["keptCount"] + budget["droppedCount"] == STORED + 1
    assert isinstance(budget["estimated"], bool) and isinstance(budget["droppedMessageIds"], list)
