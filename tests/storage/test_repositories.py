"""Data repositories against a real file: cascades, in-use conflicts, paging, colours, text rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from storage.db import Database
from storage.errors import InvalidValue, RowConflict, RowNotFound, RuleBroken
from storage.ids import IdFactory
from storage.models import ConversationAgent, Message
from storage.repositories import (
    agents,
    conversation_agents,
    conversations,
    llm_configs,
    messages,
    personalities,
    roles,
    turns,
)
from storage.repositories.conversation_agents import default_color

MakeAgent = Callable[..., dict[str, Any]]


def _add(ids: IdFactory, conversation_id: str, agent_id: str, **extra: Any) -> dict[str, Any]:
    return conversation_agents.add_conversation_agent(
        ids, {"conversationId": conversation_id, "agentId": agent_id, **extra}
    )


def test_deleting_a_conversation_takes_its_agents_and_messages_with_it(
    database: Database, ids: IdFactory, make_agent: MakeAgent
) -> None:
    doomed, other = conversations.create_conversation(ids, {}), conversations.create_conversation(ids, {})
    agent = make_agent()
    for conversation in (doomed, other):
        member = _add(ids, conversation["id"], agent["id"])
        trigger = turns.add_user_message(ids, conversation["id"], "Hi")
        turns.create_reply(ids, conversation["id"], member["id"], trigger.id, "Hello")
        turns.add_system_message(ids, conversation["id"], "Agent Ada: oops", trigger.id, member["id"])
    conversations.delete_conversation(doomed["id"])
    assert Message.select().where(Message.conversation_id == doomed["id"]).count() == 0
    assert ConversationAgent.select().where(ConversationAgent.conversation_id == doomed["id"]).count() == 0
    assert len(messages.list_messages(other["id"])) == 3
    assert agents.get_agent(agent["id"])["name"] == "Ada"  # the agent itself is not the conversation's
    with pytest.raises(RowNotFound):
        conversations.delete_conversation(doomed["id"])


@pytest.mark.parametrize(
    ("delete", "field"),
    [
        (llm_configs.delete_llm_config, "llmConfigId"),
        (roles.delete_role, "roleId"),
        (personalities.delete_personality, "personalityId"),
    ],
)
def test_deleting_something_an_agent_uses_is_a_conflict(
    make_agent: MakeAgent, delete: Callable[[str], object], field: str
) -> None:
    agent = make_agent()
    with pytest.raises(RowConflict):
        delete(agent[field])
    agents.delete_agent(agent["id"])
    delete(agent[field])  # free once no agent uses it


def test_deleting_an_agent_still_in_a_conversation_is_a_conflict(ids: IdFactory, make_agent: MakeAgent) -> None:
    agent = make_agent()
    conversation = conversations.create_conversation(ids, {})
    member = _add(ids, conversation["id"], agent["id"])
    with pytest.raises(RowConflict):
        agents.delete_agent(agent["id"])
    conversation_agents.remove_conversation_agent(member["id"])
    agents.delete_agent(agent["id"])
    with pytest.raises(RowNotFound):
        agents.get_agent(agent["id"])


def test_removing_a_conversation_agent_deletes_its_replies_and_error_notes_only(
    ids: IdFactory, make_agent: MakeAgent
) -> None:
    conversation = conversations.create_conversation(ids, {})
    ada, bob = (
        _add(ids, conversation["id"], make_agent("Ada")["id"]),
        _add(ids, conversation["id"], make_agent("Bob")["id"]),
    )
    trigger = turns.add_user_message(ids, conversation["id"], "Hi")
    turns.create_reply(ids, conversation["id"], ada["id"], trigger.id, "from Ada")
    turns.add_system_message(ids, conversation["id"], "Agent Ada: failed", trigger.id, ada["id"])
    bob_reply = turns.create_reply(ids, conversation["id"], bob["id"], trigger.id, "from Bob")
    conversation_agents.remove_conversation_agent(ada["id"])
    assert [m["id"] for m in messages.list_messages(conversation["id"])] == [trigger.id, bob_reply.id]
    assert [r["id"] for r in conversation_agents.list_conversation_agents(conversation["id"])] == [bob["id"]]


def test_adding_the_same_agent_twice_is_a_conflict(ids: IdFactory, make_agent: MakeAgent) -> None:
    conversation, agent = conversations.create_conversation(ids, {}), make_agent()
    _add(ids, conversation["id"], agent["id"])
    with pytest.raises(RowConflict):
        _add(ids, conversation["id"], agent["id"])


def test_colours_default_to_the_first_unused_then_cycle_by_count(ids: IdFactory, make_agent: MakeAgent) -> None:
    conversation = conversations.create_conversation(ids, {})
    given = _add(ids, conversation["id"], make_agent("A0")["id"], color="--agent-2")
    colours = [_add(ids, conversation["id"], make_agent(f"A{n}")["id"])["color"] for n in range(1, 10)]
    assert given["color"] == "--agent-2"
    # 1 and 3..8 fill the gaps; then 8 agents exist → --agent-1, 9 exist → --agent-2
    assert colours == [f"--agent-{n}" for n in (1, 3, 4, 5, 6, 7, 8)] + ["--agent-1", "--agent-2"]


@pytest.mark.parametrize(
    ("used", "expected"),
    [
        ([], "--agent-1"),
        (["--agent-1", "--agent-3"], "--agent-2"),
        ([f"--agent-{n}" for n in range(1, 9)] * 2, "--agent-1"),
    ],
)
def test_the_colour_rule(used: list[str], expected: str) -> None:
    assert default_color(used) == expected


def test_display_order_defaults_to_after_the_last(ids: IdFactory, make_agent: MakeAgent) -> None:
    conversation = conversations.create_conversation(ids, {})
    first = _add(ids, conversation["id"], make_agent("A")["id"])
    _add(ids, conversation["id"], make_agent("B")["id"], displayOrder=10)
    last = _add(ids, conversation["id"], make_agent("C")["id"])
    assert (first["displayOrder"], last["displayOrder"]) == (0, 11)


def test_message_paging_returns_the_newest_rows_before_an_anchor_in_ascending_order(
    database: Database, ids: IdFactory
) -> None:
    conversation = conversations.create_conversation(ids, {})
    made = [turns.add_user_message(ids, conversation["id"], f"m{n}").id for n in range(10)]
    page = lambda **kw: [m["id"] for m in messages.list_messages(conversation["id"], **kw)]  # noqa: E731
    assert page() == made
    assert page(limit=3) == made[7:]
    assert page(limit=3, before=made[7]) == made[4:7]
    assert page(limit=3, before=made[2]) == made[:2]
    assert page(before=made[5]) == made[:5]
    assert page(limit=3, before=made[0]) == []
    other = conversations.create_conversation(ids, {})
    with pytest.raises(RowNotFound):
        messages.list_messages(other["id"], limit=3, before=made[5])  # an id from another conversation
    with pytest.raises(RowNotFound):
        messages.list_messages("missing")


def test_deleting_a_trigger_keeps_its_replies_with_a_null_reply_to_id(ids: IdFactory, make_agent: MakeAgent) -> None:
    conversation = conversations.create_conversation(ids, {})
    member = _add(ids, conversation["id"], make_agent()["id"])
    trigger = turns.add_user_message(ids, conversation["id"], "Hi")
    reply = turns.create_reply(ids, conversation["id"], member["id"], trigger.id, "Hello")
    messages.delete_message(trigger.id)
    assert turns.get_message(reply.id).reply_to_id is None  # type: ignore[union-attr]
    with pytest.raises(RowNotFound):
        messages.delete_message(trigger.id)


@pytest.mark.parametrize(
    ("given", "saved"),
    [
        ("https://api.anthropic.com/v1", "https://api.anthropic.com/v1"),  # the provider's form is the caller's job
        (" http://localhost:11434/v1 ", "http://localhost:11434/v1"),
        ("   ", None),
        (None, None),
    ],
)
def test_storage_keeps_a_base_url_as_given_and_a_blank_one_as_null(
    database: Database, ids: IdFactory, given: str | None, saved: str | None
) -> None:
    row = llm_configs.create_llm_config(ids, {"customName": "Claude", "provider": "anthropic", "baseUrl": given})
    assert row["baseUrl"] == saved
    switched = llm_configs.update_llm_config(ids, row["id"], {"provider": "openai"})
    assert switched["baseUrl"] == saved  # storage knows no provider, so a provider change leaves the URL alone


def test_max_concurrency_defaults_to_8_and_changes_only_when_given(database: Database, ids: IdFactory) -> None:
    assert llm_configs.list_llm_configs()[0]["maxConcurrency"] == 8  # the seeded demo config
    row = llm_configs.create_llm_config(ids, {"customName": "Tight", "provider": "openai", "maxConcurrency": 1})
    assert row["maxConcurrency"] == 1
    renamed = llm_configs.update_llm_config(ids, row["id"], {"customName": "Still tight"})
    assert renamed["maxConcurrency"] == 1
    assert llm_configs.update_llm_config(ids, row["id"], {"maxConcurrency": 32})["maxConcurrency"] == 32
    assert llm_configs.get_llm_config_record(row["id"]).max_concurrency == 32  # type: ignore[union-attr]


def test_max_concurrency_cannot_be_cleared_with_null(database: Database, ids: IdFactory) -> None:
    row = llm_configs.create_llm_config(ids, {"customName": "Tight", "provider": "openai", "maxConcurrency": 3})
    with pytest.raises(InvalidValue) as caught:
        llm_configs.update_llm_config(ids, row["id"], {"maxConcurrency": None})
    assert caught.value.extra == {"field": "maxConcurrency", "reason": "must not be null"}
    assert llm_configs.get_llm_config(row["id"]) == row


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("   \n\t  ", RuleBroken),
        ("\u3000\u2003", RuleBroken),  # Unicode spaces are whitespace too
        ("bell\x07", RuleBroken),
        ("nul\x00", RuleBroken),
        ("c1\x85", RuleBroken),
        ("del\x7f", RuleBroken),
        ("lone \ud800 surrogate", InvalidValue),
        ("é" * (4 * 1024 * 1024) + "x", InvalidValue),  # 8 MiB + 1 byte of UTF-8, far fewer code points
    ],
)
def test_message_content_rules_a_schema_cannot_express(
    database: Database, ids: IdFactory, content: str, error: type[Exception]
) -> None:
    conversation = conversations.create_conversation(ids, {})
    with pytest.raises(error):
        messages.create_message(ids, {"conversationId": conversation["id"], "role": "user", "content": content})
    assert messages.list_messages(conversation["id"]) == []


def test_content_of_exactly_8_mib_with_tabs_and_newlines_is_accepted(database: Database, ids: IdFactory) -> None:
    conversation = conversations.create_conversation(ids, {})
    content = "a\tb\r\n" + "x" * (8 * 1024 * 1024 - 5)
    row = messages.create_message(ids, {"conversationId": conversation["id"], "role": "system", "content": content})
    assert row["content"] == content and row["role"] == "system" and row["conversationAgentId"] is None
