"""Reply versions (CONTRACT §5d) and edits in storage: the engine's calls, lists, contexts, deletes, on a real file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from storage.db import Database
from storage.errors import RowBusy, RowNotFound, RuleBroken
from storage.ids import IdFactory
from storage.repositories import conversation_agents, conversations, messages, turns

MakeAgent = Callable[..., dict[str, Any]]


@pytest.fixture
def chat(database: Database, ids: IdFactory, make_agent: MakeAgent) -> dict[str, Any]:
    """A conversation with Ada and Bob, one turn answered by both, then a second user message."""
    conversation = conversations.create_conversation(ids, {"title": "Versions"})
    cid = conversation["id"]
    ada, bob = (
        conversation_agents.add_conversation_agent(ids, {"conversationId": cid, "agentId": agent["id"]})["id"]
        for agent in (make_agent("Ada"), make_agent("Bob"))
    )
    trigger = turns.add_user_message(ids, cid, "What now?")
    replies = {}
    for ca, text in ((ada, "Ada says one"), (bob, "Bob says two")):
        reply = turns.create_reply(ids, cid, ca, trigger.id, text)
        turns.finish_reply(reply.id, "complete", text, {"totalMs": 5}, "end")
        replies[ca] = reply.id
    later = turns.add_user_message(ids, cid, "And then?")
    return {"id": cid, "ada": ada, "bob": bob, "trigger": trigger.id, "ada_v1": replies[ada], "later": later.id}


def _regenerate(ids: IdFactory, chat: dict[str, Any], text: str, of: str | None = None) -> str:
    """What the engine does for `chat:regenerate`: a new inactive version, completed, then made active."""
    new = turns.create_reply(ids, chat["id"], chat["ada"], chat["trigger"], text[:3], version_of=of or chat["ada_v1"])
    turns.finish_reply(new.id, "complete", text, None, "end")
    turns.activate_version(new.id)
    return new.id


def _listed(chat: dict[str, Any], **options: Any) -> list[tuple[str, Any, Any, bool]]:
    return [
        (m["content"], m["version"], m["versionCount"], m["active"])
        for m in messages.list_messages(chat["id"], **options)
    ]


def test_an_existing_reply_is_version_1_of_1_and_user_rows_have_no_version(chat: dict[str, Any]) -> None:
    assert _listed(chat) == [
        ("What now?", None, None, True),
        ("Ada says one", 1, 1, True),
        ("Bob says two", 1, 1, True),
        ("And then?", None, None, True),
    ]
    reply = next(m for m in turns.load_history(chat["id"]) if m.id == chat["ada_v1"])
    assert (reply.version, reply.version_count, reply.version_of_id, reply.edited_at) == (1, 1, None, None)


def test_a_new_version_streams_inactive_while_the_old_one_stays_shown(chat: dict[str, Any], ids: IdFactory) -> None:
    new = turns.create_reply(ids, chat["id"], chat["ada"], chat["trigger"], "Ada tr", version_of=chat["ada_v1"])
    assert (new.status, new.version, new.version_count, new.version_of_id) == ("streaming", 2, 2, chat["ada_v1"])
    assert _listed(chat)[1] == ("Ada says one", 1, 2, True)
    assert [m.id for m in turns.load_history(chat["id"]) if m.conversation_agent_id == chat["ada"]] == [chat["ada_v1"]]
    active = turns.active_reply(chat["ada"], chat["trigger"])
    assert active is not None and active.id == chat["ada_v1"]


def test_a_completed_version_made_active_takes_the_replys_place_in_lists_and_contexts(
    chat: dict[str, Any], ids: IdFactory
) -> None:
    v2 = _regenerate(ids, chat, "Ada thinks again")
    assert _listed(chat) == [
        ("What now?", None, None, True),
        ("Ada thinks again", 2, 2, True),  # where the reply was, before Bob's and the later message
        ("Bob says two", 1, 1, True),
        ("And then?", None, None, True),
    ]
    history = turns.load_history(chat["id"])
    assert [m.content for m in history] == ["What now?", "Ada thinks again", "Bob says two", "And then?"]
    assert history[1].id == v2 and (history[1].version, history[1].version_count) == (2, 2)
    assert turns.active_reply(chat["ada"], chat["trigger"]).id == v2  # type: ignore[union-attr]


def test_all_versions_lists_every_version_together_oldest_first(chat: dict[str, Any], ids: IdFactory) -> None:
    _regenerate(ids, chat, "Second try")
    _regenerate(ids, chat, "Third try")
    assert _listed(chat, all_versions=True)[1:4] == [
        ("Ada says one", 1, 3, False),
        ("Second try", 2, 3, False),
        ("Third try", 3, 3, True),
    ]


def test_versions_of_any_version_are_the_whole_reply_oldest_first(chat: dict[str, Any], ids: IdFactory) -> None:
    v2 = _regenerate(ids, chat, "Second try")
    v3 = _regenerate(ids, chat, "Third try", of=v2)  # any version names the reply
    for asked in (chat["ada_v1"], v2, v3):
        assert [(m["id"], m["version"], m["active"]) for m in messages.list_versions(asked)] == [
            (chat["ada_v1"], 1, False), (v2, 2, False), (v3, 3, True)
        ]  # fmt: skip


def test_selecting_a_version_makes_it_the_only_active_one(chat: dict[str, Any], ids: IdFactory) -> None:
    v2 = _regenerate(ids, chat, "Second try")
    row = messages.select_version(chat["ada_v1"])
    assert (row["id"], row["active"], row["version"], row["versionCount"]) == (chat["ada_v1"], True, 1, 2)
    assert [m["active"] for m in messages.list_versions(v2)] == [True, False]
    assert turns.load_history(chat["id"])[1].content == "Ada says one"
    assert messages.select_version(chat["ada_v1"])["active"] is True  # selecting it again changes nothing


@pytest.mark.parametrize("which", ["trigger", "later"])
def test_a_user_message_has_no_versions_to_list_or_select(chat: dict[str, Any], which: str) -> None:
    with pytest.raises(RuleBroken):
        messages.list_versions(chat[which])
    with pytest.raises(RuleBroken):
        messages.select_version(chat[which])
    with pytest.raises(RuleBroken):
        turns.activate_version(chat[which])


def test_a_version_still_streaming_cannot_be_selected(chat: dict[str, Any], ids: IdFactory) -> None:
    new = turns.create_reply(ids, chat["id"], chat["ada"], chat["trigger"], "Ada tr", version_of=chat["ada_v1"])
    with pytest.raises(RowBusy):
        messages.select_version(new.id)
    with pytest.raises(RowNotFound):
        messages.select_version("no-such-message")


def test_a_new_version_must_redo_a_reply_of_the_same_agent(chat: dict[str, Any], ids: IdFactory) -> None:
    with pytest.raises(RuleBroken):
        turns.create_reply(ids, chat["id"], chat["bob"], chat["trigger"], "Bob", version_of=chat["ada_v1"])
    with pytest.raises(RuleBroken):
        turns.create_reply(ids, chat["id"], chat["ada"], chat["trigger"], "Ada", version_of=chat["trigger"])
    with pytest.raises(RowNotFound):
        turns.create_reply(ids, chat["id"], chat["ada"], chat["trigger"], "Ada", version_of="no-such-message")


def test_two_replies_of_one_agent_to_one_message_are_never_taken_for_versions(
    chat: dict[str, Any], ids: IdFactory
) -> None:
    other = turns.create_reply(ids, chat["id"], chat["ada"], chat["trigger"], "A second, separate reply")
    turns.finish_reply(other.id, "complete", "A second, separate reply", None, "end")
    assert [(m["version"], m["versionCount"]) for m in messages.list_versions(other.id)] == [(1, 1)]
    assert len([m for m in messages.list_messages(chat["id"]) if m["conversationAgentId"] == chat["ada"]]) == 2


def test_deleting_the_active_version_shows_the_newest_complete_one_and_keeps_numbers_dense(
    chat: dict[str, Any], ids: IdFactory
) -> None:
    v2 = _regenerate(ids, chat, "Second try")
    failed = turns.create_reply(ids, chat["id"], chat["ada"], chat["trigger"], "Half", version_of=v2)
    turns.finish_reply(failed.id, "cancelled", "Half a", None)
    v4 = _regenerate(ids, chat, "Fourth try")
    messages.delete_message(v4)
    assert [(m["content"], m["version"], m["active"]) for m in messages.list_versions(v2)] == [
        ("Ada says one", 1, False), ("Second try", 2, True), ("Half a", 3, False)
    ]  # fmt: skip
    messages.delete_message(chat["ada_v1"])  # the first version: the others stay one reply
    assert [(m["content"], m["version"], m["versionCount"]) for m in messages.list_versions(v2)] == [
        ("Second try", 1, 2), ("Half a", 2, 2)
    ]  # fmt: skip
    assert turns.create_reply(ids, chat["id"], chat["ada"], chat["trigger"], "Again", version_of=v2).version == 3


def test_clearing_a_failed_attempt_renumbers_the_versions_left(chat: dict[str, Any], ids: IdFactory) -> None:
    failed = turns.create_reply(ids, chat["id"], chat["ada"], chat["trigger"], "Half", version_of=chat["ada_v1"])
    turns.finish_reply(failed.id, "error", "Half", None)
    turns.delete_turn_rows(chat["ada"], chat["trigger"])  # the retry path deletes what did not complete
    assert [(m["version"], m["versionCount"]) for m in messages.list_versions(chat["ada_v1"])] == [(1, 1)]


# --- edits ---------------------------------------------------------------------------------------------------------


def test_an_edit_changes_the_text_sets_edited_at_and_reaches_the_context(
    chat: dict[str, Any], ids: IdFactory, clock: Any
) -> None:
    clock.advance(1000)
    edited = messages.update_content(ids, chat["trigger"], "What now, exactly?")
    assert edited["content"] == "What now, exactly?" and edited["editedAt"] == "2025-11-26T08:00:01.000Z"
    assert edited["createdAt"] == "2025-11-26T08:00:00.000Z"
    reply = messages.update_content(ids, chat["ada_v1"], "Ada, revised")
    assert (reply["version"], reply["versionCount"], reply["editedAt"]) == (1, 1, edited["editedAt"])
    history = turns.load_history(chat["id"])
    assert [m.content for m in history[:2]] == ["What now, exactly?", "Ada, revised"]
    assert history[0].edited_at == clock.now


def test_the_same_text_again_is_no_edit(chat: dict[str, Any], ids: IdFactory) -> None:
    assert messages.update_content(ids, chat["trigger"], "What now?")["editedAt"] is None


def test_a_reply_still_streaming_cannot_be_edited_but_a_settled_one_can(chat: dict[str, Any], ids: IdFactory) -> None:
    streaming = turns.create_reply(ids, chat["id"], chat["bob"], chat["later"], "Bob is typ")
    with pytest.raises(RowBusy):
        messages.update_content(ids, streaming.id, "Mine now")
    turns.finish_reply(streaming.id, "cancelled", "Bob is typ", None)
    assert messages.update_content(ids, streaming.id, "Bob is typing")["status"] == "cancelled"


@pytest.mark.parametrize("content", ["   \n\t ", "bell \x07 here", "\x7f"])
def test_an_edit_follows_the_content_rules_of_create(chat: dict[str, Any], ids: IdFactory, content: str) -> None:
    with pytest.raises(RuleBroken):
        messages.update_content(ids, chat["trigger"], content)
    assert turns.load_history(chat["id"])[0].content == "What now?"
