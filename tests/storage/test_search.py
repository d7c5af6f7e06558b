"""`messages:search` in storage: the FTS5 index kept in step by triggers, plain-word queries, snippets, and what
happens on an SQLite without FTS5 (a real file each time)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import migrations
from storage.db import Database
from storage.errors import FeatureMissing, RowNotFound
from storage.ids import IdFactory
from storage.models import Message
from storage.repositories import conversation_agents, conversations, messages, search, turns
from storage.setup import open_database

MakeAgent = Callable[..., dict[str, Any]]


def _found(query: str, **options: Any) -> list[str]:
    return [hit["message"]["content"] for hit in search.search_messages(query, **options)]


def _index_is_consistent(database: Database) -> None:
    assert database.sqlite is not None
    # FTS5's own check: every indexed token matches the content table, and nothing is missing or extra.
    database.sqlite.execute_sql("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
    indexed = database.sqlite.execute_sql("SELECT count(*) FROM messages_fts").fetchone()[0]
    assert indexed == Message.select().where(Message.status != "streaming").count()


@pytest.fixture
def room(database: Database, ids: IdFactory, make_agent: MakeAgent) -> dict[str, Any]:
    conversation = conversations.create_conversation(ids, {"title": "Garden plans"})
    ca = conversation_agents.add_conversation_agent(
        ids, {"conversationId": conversation["id"], "agentId": make_agent("Ada")["id"]}
    )
    return {"id": conversation["id"], "ada": ca["id"]}


def test_a_word_finds_the_messages_holding_it_best_match_first(room: dict[str, Any], ids: IdFactory) -> None:
    for text in ["Tomatoes need sun.", "Tomatoes, tomatoes, tomatoes everywhere!", "Basil likes shade."]:
        turns.add_user_message(ids, room["id"], text)
    assert _found("tomatoes") == ["Tomatoes, tomatoes, tomatoes everywhere!", "Tomatoes need sun."]
    assert _found("TOMATOES sun") == ["Tomatoes need sun."]  # every word must appear, any case
    assert _found("cucumber") == []


def test_a_hit_carries_its_row_the_conversation_title_and_a_highlighted_snippet(
    room: dict[str, Any], ids: IdFactory
) -> None:
    long_text = " ".join(["filler"] * 40 + ["the rare orchid blooms"] + ["tail"] * 40)
    row = turns.add_user_message(ids, room["id"], long_text)
    [hit] = search.search_messages("orchid")
    assert hit["message"]["id"] == row.id and hit["message"]["content"] == long_text
    assert hit["conversationTitle"] == "Garden plans"
    snippet = hit["snippet"]
    assert "orchid" in snippet and snippet.startswith("…") and snippet.endswith("…") and len(snippet) < 200
    [highlight] = hit["highlights"]
    assert snippet[highlight["start"] : highlight["end"]] == "orchid"


def test_highlight_offsets_count_utf16_code_units_as_javascript_does() -> None:
    snippet = search.split_marks("😀 caf\ue000é\ue001 and \ue000x\ue001")
    assert snippet.text == "😀 café and x"
    assert snippet.highlights == [(6, 7), (12, 13)]  # the emoji is two units before them


def test_accents_are_ignored_both_ways(room: dict[str, Any], ids: IdFactory) -> None:
    turns.add_user_message(ids, room["id"], "Un café crème, s'il vous plaît")
    assert _found("cafe creme") == _found("CAFÉ") == ["Un café crème, s'il vous plaît"]


def test_search_can_be_limited_to_one_conversation_and_to_a_number_of_hits(
    room: dict[str, Any], ids: IdFactory
) -> None:
    other = conversations.create_conversation(ids, {"title": "Other"})["id"]
    for n in range(5):
        turns.add_user_message(ids, room["id"], f"seed packet {n}")
        turns.add_user_message(ids, other, f"seed tray {n}")
    assert len(_found("seed")) == 10
    assert len(_found("seed", limit=3)) == 3
    assert {hit["conversationTitle"] for hit in search.search_messages("seed", conversation_id=other)} == {"Other"}
    with pytest.raises(RowNotFound):
        search.search_messages("seed", conversation_id="no-such-conversation")


def test_the_index_follows_edits_and_deletes(room: dict[str, Any], ids: IdFactory, database: Database) -> None:
    first = turns.add_user_message(ids, room["id"], "lavender by the gate")
    messages.update_content(ids, first.id, "rosemary by the gate")
    assert _found("lavender") == [] and _found("rosemary") == ["rosemary by the gate"]
    messages.delete_message(first.id)
    assert _found("rosemary") == []
    _index_is_consistent(database)


def test_deleting_a_conversation_removes_its_messages_from_the_index(
    room: dict[str, Any], ids: IdFactory, database: Database
) -> None:
    trigger = turns.add_user_message(ids, room["id"], "compost heap")
    reply = turns.create_reply(ids, room["id"], room["ada"], trigger.id, "compost")
    turns.finish_reply(reply.id, "complete", "compost needs turning", None, "end")
    conversations.delete_conversation(room["id"])
    assert _found("compost") == []
    _index_is_consistent(database)


def test_a_reply_is_found_once_it_stops_streaming_and_only_as_its_active_version(
    room: dict[str, Any], ids: IdFactory, database: Database
) -> None:
    trigger = turns.add_user_message(ids, room["id"], "What should cover the beds?")
    reply = turns.create_reply(ids, room["id"], room["ada"], trigger.id, "Bark mul")
    turns.save_partial_replies({reply.id: "Bark mulch is"})
    assert _found("bark") == []  # still being written
    turns.finish_reply(reply.id, "complete", "Bark mulch is best", None, "end")
    assert _found("bark") == ["Bark mulch is best"]
    again = turns.create_reply(ids, room["id"], room["ada"], trigger.id, "Straw", version_of=reply.id)
    turns.finish_reply(again.id, "complete", "Straw mulch is cheaper", None, "end")
    assert _found("mulch") == ["Bark mulch is best"]  # the new version is not active yet
    turns.activate_version(again.id)
    assert _found("mulch") == ["Straw mulch is cheaper"]
    _index_is_consistent(database)


HOSTILE = [
    "", " ", '"', '""', '"unclosed', "a", "*", "-", "^", ":", "(", ")", "NEAR", "NEAR(a b)", "a NEAR b", "AND",
    "OR", "NOT", "a AND", "OR b", "NOT NOT", "col:val", "content:x", "{content}: y", "x*", "*x", "-x", "+x", "a OR -b",
    "😀", "😀😀 🎉", "!!!", "...", "?", "\\", "'", "''", "%", "_", "a'b\"c", "\u200b", "\ufeff", "\x00", "x\x00y",
    "ǅ", "Ⅻ", "٣", "\U000e0001", "\ue000", "a" * 10_000, "ab " * 3_333, '" OR "" AND ' * 500,
]  # fmt: skip


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_no_query_is_ever_an_error(room: dict[str, Any], ids: IdFactory, query: str) -> None:
    turns.add_user_message(ids, room["id"], 'a b "quoted" NEAR AND x* -x 😀 ab ǅ Ⅻ ٣')
    assert isinstance(search.search_messages(query), list)
    assert isinstance(search.search_messages(query, conversation_id=room["id"], limit=1), list)


@pytest.fixture
def searchable(data_dir: Path) -> Iterator[None]:
    """One seeded file for a whole hypothesis run (a function-scoped fixture is set up once per test, not per
    example)."""
    database = open_database(data_dir / "hypothesis", IdFactory())
    ids = IdFactory()
    conversation = conversations.create_conversation(ids, {"title": "Fuzz"})["id"]
    for text in ['plain words and "quotes"', "NEAR AND OR NOT * - ^ :", "emoji 😀 and ǅ Ⅻ ٣", "x" * 500]:
        turns.add_user_message(ids, conversation, text)
    yield
    database.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(min_size=1, max_size=200) | st.lists(st.sampled_from(HOSTILE[:47]), max_size=8).map(" ".join))
def test_any_text_at_all_is_a_query_with_an_answer(searchable: None, query: str) -> None:
    assert isinstance(search.search_messages(query), list)


def test_every_plain_word_is_one_quoted_fts_string() -> None:
    assert search.fts_query('say "hi" NEAR(x) *') == '"say" """hi""" "NEAR(x)"'
    assert search.fts_query("!!! 😀 ...") is None


# --- an SQLite without FTS5 ----------------------------------------------------------------------------------------


def test_without_fts5_the_file_still_opens_and_works_and_search_says_it_is_unavailable(
    data_dir: Path, ids: IdFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations, "fts5_available", lambda sqlite: False)
    database = open_database(data_dir, ids)
    try:
        assert database.sqlite is not None and "messages_fts" not in database.sqlite.get_tables()
        conversation = conversations.create_conversation(ids, {})["id"]
        turns.add_user_message(ids, conversation, "written without an index")
        with pytest.raises(FeatureMissing):
            search.search_messages("written")
    finally:
        database.close()
    monkeypatch.undo()  # this SQLite has FTS5 after all: the next start builds the index, rows included
    database = open_database(data_dir, ids)
    try:
        assert _found("written") == ["written without an index"]
        _index_is_consistent(database)
    finally:
        database.close()


def test_a_file_indexed_elsewhere_opened_without_fts5_drops_only_the_triggers_then_catches_up(
    data_dir: Path, ids: IdFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = open_database(data_dir, ids)
    conversation = conversations.create_conversation(ids, {})["id"]
    turns.add_user_message(ids, conversation, "before the move")
    database.close()
    monkeypatch.setattr(migrations, "fts5_available", lambda sqlite: False)
    database = open_database(data_dir, ids)
    turns.add_user_message(ids, conversation, "after the move")  # a write with the index's triggers in place fails
    database.close()
    monkeypatch.undo()
    database = open_database(data_dir, ids)
    try:
        assert sorted(_found("move")) == ["after the move", "before the move"]
        _index_is_consistent(database)
    finally:
        database.close()
