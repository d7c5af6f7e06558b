"""`buildAgentContext` over stdio: what it shows is what the provider is actually sent, and never a key."""

from __future__ import annotations

import json

from sidecar.chat.context import CONTINUE_TURN
from tests.fake_provider import FakeProvider
from tests.sidecar_client import Sidecar
from tests.stdio import chat_setup
from tests.stdio.chat_setup import API_KEY, Room, ask, fake_config, messages, requests_for, room_with

fake, sidecar = chat_setup.fake, chat_setup.sidecar  # the shared fixtures

OPENAI_MODEL, ANTHROPIC_MODEL = "gpt-ctx-words-3", "claude-ctx-words-3"


def _room(sidecar: Sidecar, fake: FakeProvider) -> Room:
    return room_with(sidecar, [("Oli", fake_config(sidecar, fake, "openai"), OPENAI_MODEL),
                               ("Ana", fake_config(sidecar, fake, "anthropic"), ANTHROPIC_MODEL)])


def _context(sidecar: Sidecar, room: Room, agent_id: str, user_message_id: str | None = None) -> dict:
    params = {"conversationId": room.conversation_id, "agentId": agent_id}
    if user_message_id is not None:
        params["userMessageId"] = user_message_id
    return sidecar.call("buildAgentContext", params)


def test_a_turns_context_is_exactly_the_body_each_provider_received(sidecar: Sidecar, fake: FakeProvider) -> None:
    room = _room(sidecar, fake)
    ask(sidecar, room, "First")
    second = ask(sidecar, room, "Second")
    for name, model in (("Oli", OPENAI_MODEL), ("Ana", ANTHROPIC_MODEL)):
        sent = requests_for(fake, model)[-1].body
        by_ca = _context(sidecar, room, room.ca(name), second["userMessageId"])
        by_agent = _context(sidecar, room, room.members[name]["agentId"], second["userMessageId"])
        assert by_ca == by_agent
        assert by_ca["request"] == sent, name
        assert by_ca["model"] == model and by_ca["provider"] == ("openai" if name == "Oli" else "anthropic")
        assert API_KEY not in json.dumps(by_ca)
    ana = _context(sidecar, room, room.ca("Ana"), second["userMessageId"])
    assert ana["request"]["system"] == ana["systemPrompt"]
    assert ana["request"]["messages"] == ana["messages"]


def test_without_a_user_message_the_context_covers_the_whole_history_as_the_next_call_would(
    sidecar: Sidecar, fake: FakeProvider
) -> None:
    room = _room(sidecar, fake)
    turn = ask(sidecar, room, "Only question")
    snapshot = _context(sidecar, room, room.ca("Oli"), turn["userMessageId"])
    upcoming = _context(sidecar, room, room.ca("Oli"))
    assert snapshot["messages"] == [{"role": "user", "content": "Only question"}]
    # Next call: its own reply as assistant, the sibling's as a named user turn, ending on a user turn.
    # Replies are saved as they complete, so which sibling comes first is the providers' race.
    rows = messages(sidecar, room)
    oli_reply, ana_reply = (next(r["content"] for r in rows if r.get("conversationAgentId") == room.ca(name))
                            for name in ("Oli", "Ana"))
    if [r.get("conversationAgentId") for r in rows][-1] == room.ca("Ana"):
        expected = [("user", "Only question"), ("assistant", oli_reply), ("user", f"Ana: {ana_reply}")]
    else:
        expected = [("user", f"Only question\n\nAna: {ana_reply}"), ("assistant", oli_reply),
                    ("user", CONTINUE_TURN)]
    assert [(m["role"], m["content"]) for m in upcoming["messages"]] == expected
    assert upcoming["request"]["messages"][1:] == upcoming["messages"]


def test_a_disabled_agent_still_gets_its_context(sidecar: Sidecar, fake: FakeProvider) -> None:
    room = _room(sidecar, fake)
    sidecar.call("conversationAgents:update", {"id": room.ca("Ana"), "enabled": False})
    turn = ask(sidecar, room, "Hello")
    assert turn["totalAgents"] == 1 and requests_for(fake, ANTHROPIC_MODEL) == []
    context = _context(sidecar, room, room.ca("Ana"), turn["userMessageId"])
    assert context["messages"] == [{"role": "user", "content": "Hello"}]
    assert context["request"]["model"] == ANTHROPIC_MODEL and "system" in context["request"]
    assert API_KEY not in json.dumps(context)


def test_an_unknown_agent_or_message_is_not_found(sidecar: Sidecar, fake: FakeProvider) -> None:
    room = _room(sidecar, fake)
    other = sidecar.call("conversations:create", {"title": "other"})
    stray = sidecar.call("messages:create", {"conversationId": other["id"], "role": "user", "content": "Elsewhere"})
    for params in ({"agentId": other["id"]}, {"agentId": room.ca("Oli"), "userMessageId": stray["id"]}):
        error = sidecar.call_error("buildAgentContext", {"conversationId": room.conversation_id, **params})
        assert (error.code, error.kind) == (-32010, "not_found")
