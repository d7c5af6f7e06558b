"""Start-up: pragmas, seeding exactly once, and replies left streaming marked interrupted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from storage.db import Database
from storage.ids import IdFactory
from storage.repositories import conversation_agents, conversations, llm_configs, personalities, roles, turns
from storage.seed import PERSONALITIES, ROLES
from storage.setup import open_database

KNOWN_TRAITS = {
    "openness",
    "conscientiousness",
    "extraversion",
    "agreeableness",
    "neuroticism",
    "formality",
    "humor",
    "brevity",
    "assertiveness",
    "empathy",
    "curiosity",
    "responseLength",
    "randomness",
    "focus",
}


def test_the_connection_uses_wal_enforces_foreign_keys_and_bounds_its_page_cache(database: Database) -> None:
    pragma = database.sqlite.execute_sql
    assert pragma("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert pragma("PRAGMA foreign_keys").fetchone()[0] == 1
    # The page cache grows with the file up to this bound; at 16 MB it was most of the sidecar's memory growth.
    assert pragma("PRAGMA cache_size").fetchone()[0] == -2000


def test_the_first_start_seeds_built_in_roles_personalities_and_the_demo_config(database: Database) -> None:
    seeded_roles = roles.list_roles()
    assert [r["name"] for r in seeded_roles] == [name for name, _, _ in ROLES]
    assert len(seeded_roles) == 8
    assert all(r["systemPrompt"].strip() and r["description"].strip() for r in seeded_roles)
    seeded = personalities.list_personalities()
    assert len(seeded) == len(PERSONALITIES) == 6
    for personality in seeded:
        assert set(personality["behaviors"]) <= KNOWN_TRAITS
        assert all(0 <= value <= 100 for value in personality["behaviors"].values())
    [demo] = llm_configs.list_llm_configs()
    assert (demo["customName"], demo["provider"], demo["baseUrl"], demo["useAuthHeader"]) == (
        "Demo (offline)",
        "demo",
        None,
        True,
    )


def test_a_deleted_built_in_row_does_not_come_back_on_the_next_start(data_dir: Path, ids: IdFactory) -> None:
    first = open_database(data_dir, ids)
    doomed = roles.list_roles()[0]["id"]
    roles.delete_role(doomed)
    llm_configs.delete_llm_config(llm_configs.list_llm_configs()[0]["id"])
    first.close()

    second = open_database(data_dir, ids)
    try:
        assert len(roles.list_roles()) == 7
        assert doomed not in {r["id"] for r in roles.list_roles()}
        assert llm_configs.list_llm_configs() == []
    finally:
        second.close()


def test_replies_left_streaming_are_marked_interrupted_at_the_next_start(
    data_dir: Path, ids: IdFactory, database: Database, make_agent: Callable[..., dict[str, Any]]
) -> None:
    conversation = conversations.create_conversation(ids, {})
    agent = make_agent()
    member = conversation_agents.add_conversation_agent(
        ids, {"conversationId": conversation["id"], "agentId": agent["id"]}
    )
    trigger = turns.add_user_message(ids, conversation["id"], "Hello")
    live = turns.create_reply(ids, conversation["id"], member["id"], trigger.id, "Half a sen")
    done = turns.create_reply(ids, conversation["id"], member["id"], trigger.id, "Done.")
    turns.finish_reply(done.id, "complete", "Done.", None)
    database.close()  # the process "dies" with `live` still streaming

    second = open_database(data_dir, ids)
    try:
        assert turns.get_message(live.id).status == "interrupted"  # type: ignore[union-attr]
        assert turns.get_message(live.id).content == "Half a sen"  # type: ignore[union-attr]
        assert turns.get_message(done.id).status == "complete"  # type: ignore[union-attr]
        assert turns.get_message(trigger.id).status == "complete"  # type: ignore[union-attr]
    finally:
        second.close()
