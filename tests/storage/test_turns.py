"""The chat engine's storage calls: participants, history, reply rows and retry clean-up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from storage.db import Database
from storage.errors import RowNotFound, RuleBroken
from storage.ids import IdFactory
from storage.records import MessageRecord
from storage.repositories import conversation_agents, conversations, llm_configs, messages, turns

MakeAgent = Callable[..., dict[str, Any]]


@pytest.fixture
def chat(database: Database, ids: IdFactory, make_agent: MakeAgent) -> dict[str, Any]:
    """A conversation with two agents, Ada (enabled) and Bob (disabled, listed first)."""
    conversation = conversations.create_conversation(ids, {"title": "Planning"})
    ada, bob = make_agent("Ada"), make_agent("Bob", systemPrompt="Be brief.", temperature=0.3)
    ada_ca = conversation_agents.add_conversation_agent(
        ids, {"conversationId": conversation["id"], "agentId": ada["id"], "displayOrder": 5}
    )
    bob_ca = conversation_agents.add_conversation_agent(
        ids, {"conversationId": conversation["id"], "agentId": bob["id"], "displayOrder": 1, "enabled": False}
    )
    return {"id": conversation["id"], "ada": ada_ca["id"], "bob": bob_ca["id"], "bob_agent": bob["id"]}


def test_participants_are_every_agent_in_display_order_fully_resolved(chat: dict[str, Any]) -> None:
    bob, ada = turns.load_participants(chat["id"])
    assert (bob.agent_name, bob.enabled, bob.display_order) == ("Bob", False, 1)
    assert (ada.agent_name, ada.enabled, ada.display_order) == ("Ada", True, 5)
    assert bob.agent_id == chat["bob_agent"] and bob.conversation_agent_id == chat["bob"]
    assert bob.system_prompt == "Be brief." and bob.temperature == 0.3 and bob.timeout_ms == 60000
    assert bob.role.name == "Devil's Advocate" and bob.role.system_prompt
    assert bob.personality.name == "Balanced" and bob.personality.behaviors["openness"] == 60
    assert bob.llm_config is not None and bob.llm_config.provider == "demo"
    assert bob.llm_config.max_concurrency == 8


def test_a_participant_carries_its_llm_configs_max_concurrency(chat: dict[str, Any], ids: IdFactory) -> None:
    config_id = turns.load_participants(chat["id"])[0].llm_config.id  # type: ignore[union-attr]
    llm_configs.update_llm_config(ids, config_id, {"maxConcurrency": 2})
    assert {p.llm_config.max_concurrency for p in turns.load_participants(chat["id"])} == {2}  # type: ignore[union-attr]


def test_participants_of_an_unknown_conversation_are_not_found(database: Database) -> None:
    with pytest.raises(RowNotFound):
        turns.load_participants("no-such-conversation")


def test_history_is_in_insertion_order_even_within_one_millisecond(
    chat: dict[str, Any], ids: IdFactory, clock: Any
) -> None:
    made = [turns.add_user_message(ids, chat["id"], f"message {n}") for n in range(20)]
    history = turns.load_history(chat["id"])
    assert [m.id for m in history] == [m.id for m in made]
    assert {m.created_at for m in history} == {clock.now}


def test_a_reply_streams_and_then_finishes_with_its_usage_and_stop_reason(
    chat: dict[str, Any], ids: IdFactory, clock: Any
) -> None:
    start = clock.now
    trigger = turns.add_user_message(ids, chat["id"], "Go")
    clock.advance(40)
    reply = turns.create_reply(ids, chat["id"], chat["ada"], trigger.id, "Hel")
    assert (reply.role, reply.status, reply.reply_to_id, reply.created_at) == (
        "agent",
        "streaming",
        trigger.id,
        start + 40,
    )
    turns.save_partial_replies({reply.id: "Hello"})
    assert turns.get_message(reply.id).content == "Hello"  # type: ignore[union-attr]
    assert [m["stopReason"] for m in messages.list_messages(chat["id"])] == [None, None]  # user row; streaming
    turns.finish_reply(reply.id, "complete", "Hello there", {"inputTokens": 3, "outputTokens": 2}, "max_tokens")
    assert turns.get_message(reply.id) == MessageRecord(
        id=reply.id,
        conversation_id=chat["id"],
        conversation_agent_id=chat["ada"],
        role="agent",
        content="Hello there",
        included=True,
        status="complete",
        reply_to_id=trigger.id,
        created_at=start + 40,
        usage={"inputTokens": 3, "outputTokens": 2},
        stop_reason="max_tokens",
    )
    assert turns.load_history(chat["id"])[-1] == turns.get_message(reply.id)
    assert messages.list_messages(chat["id"])[-1]["stopReason"] == "max_tokens"
    assert turns.find_reply(chat["ada"], trigger.id) == turns.get_message(reply.id)
    assert turns.find_reply(chat["bob"], trigger.id) is None


def test_an_unknown_message_is_none(database: Database) -> None:
    assert turns.get_message("nope") is None


def test_a_user_message_follows_the_same_rules_as_messages_create(chat: dict[str, Any], ids: IdFactory) -> None:
    with pytest.raises(RuleBroken):
        turns.add_user_message(ids, chat["id"], " \n\t ")
    with pytest.raises(RowNotFound):
        turns.add_user_message(ids, "missing", "Hi")
    assert turns.load_history(chat["id"]) == []


def test_a_notice_for_a_conversation_deleted_meanwhile_is_not_found_and_saves_nothing(
    chat: dict[str, Any], ids: IdFactory
) -> None:
    # chat:startAuto reads the settings, then a conversations:delete runs, then the "started" notice is saved:
    # that must be not_found for the client, never a foreign-key error (-32603).
    conversations.delete_conversation(chat["id"])
    with pytest.raises(RowNotFound):
        turns.add_system_message(ids, chat["id"], "Auto mode started", None, None)
    assert turns.load_history(chat["id"]) == []


def test_a_notice_answering_a_message_deleted_meanwhile_is_saved_without_the_dangling_reference(
    chat: dict[str, Any], ids: IdFactory
) -> None:
    # An auto turn re-run on a saved message reads it, a messages:delete of it runs, then "Auto mode started" is
    # saved in reply to it: found by the release interleaving run (seed 569999974) as a foreign-key error (-32603).
    trigger = turns.add_user_message(ids, chat["id"], "Go on")
    messages.delete_message(trigger.id)
    notice = turns.add_system_message(ids, chat["id"], "Auto mode started", trigger.id, None)
    assert notice.reply_to_id is None  # as the FK's SET NULL leaves a notice saved just before the delete
    assert [row.content for row in turns.load_history(chat["id"])] == ["Auto mode started"]


def test_clearing_a_failed_turn_removes_only_that_agents_unfinished_rows_for_that_trigger(
    chat: dict[str, Any], ids: IdFactory
) -> None:
    first, second = turns.add_user_message(ids, chat["id"], "One"), turns.add_user_message(ids, chat["id"], "Two")
    failed = turns.create_reply(ids, chat["id"], chat["ada"], second.id, "partial")
    turns.finish_reply(failed.id, "error", "partial", None)
    note = turns.add_system_message(ids, chat["id"], "Agent Ada: it failed", second.id, chat["ada"])
    kept = [
        turns.create_reply(ids, chat["id"], chat["ada"], first.id, "earlier turn"),  # other trigger
        turns.create_reply(ids, chat["id"], chat["bob"], second.id, "sibling"),  # other agent
        turns.add_system_message(ids, chat["id"], "Agent Bob: it failed", second.id, chat["bob"]),
        turns.add_system_message(ids, chat["id"], "A plain note", second.id, None),
    ]
    turns.delete_turn_rows(chat["ada"], second.id)
    remaining = {m.id for m in turns.load_history(chat["id"])}
    assert failed.id not in remaining and note.id not in remaining
    assert remaining == {first.id, second.id, *(m.id for m in kept)}


def test_clearing_a_turn_never_deletes_a_complete_reply(chat: dict[str, Any], ids: IdFactory) -> None:
    trigger = turns.add_user_message(ids, chat["id"], "Go")
    reply = turns.create_reply(ids, chat["id"], chat["ada"], trigger.id, "Done")
    turns.finish_reply(reply.id, "complete", "Done", None)
    turns.delete_turn_rows(chat["ada"], trigger.id)
    assert turns.get_message(reply.id) is not None


def test_marking_interrupted_counts_only_streaming_rows(chat: dict[str, Any], ids: IdFactory) -> None:
    trigger = turns.add_user_message(ids, chat["id"], "Go")
    turns.create_reply(ids, chat["id"], chat["ada"], trigger.id, "a")
    turns.create_reply(ids, chat["id"], chat["bob"], trigger.id, "b")
    assert turns.mark_interrupted() == 2
    assert turns.mark_interrupted() == 0
    assert {m.status for m in turns.load_history(chat["id"])} == {"complete", "interrupted"}


def test_participants_load_in_the_same_few_queries_whatever_the_number_of_agents(
    chat: dict[str, Any], ids: IdFactory, make_agent: MakeAgent, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    execute = database.sqlite.execute_sql

    def counting(sql: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(sql)
        return execute(sql, *args, **kwargs)

    monkeypatch.setattr(database.sqlite, "execute_sql", counting)
    turns.load_participants(chat["id"])
    with_two = len(statements)
    for n in range(4):
        agent = make_agent(f"Extra {n}")
        conversation_agents.add_conversation_agent(ids, {"conversationId": chat["id"], "agentId": agent["id"]})
    statements.clear()
    assert len(turns.load_participants(chat["id"])) == 6
    assert len(statements) == with_two <= 2  # the conversation check and one joined select


def test_an_agent_whose_llm_config_row_is_gone_has_none(chat: dict[str, Any], database: Database) -> None:
    bob = turns.load_participants(chat["id"])[0]
    assert bob.llm_config is not None
    database.sqlite.pragma("foreign_keys", 0)  # the schema forbids it; an older or damaged file may not
    try:
        database.sqlite.execute_sql("DELETE FROM llm_configs WHERE id = ?", (bob.llm_config.id,))
    finally:
        database.sqlite.pragma("foreign_keys", 1)
    bob, ada = turns.load_participants(chat["id"])
    assert bob.llm_config is None and bob.role.name == "Devil's Advocate" and bob.personality.name == "Balanced"
