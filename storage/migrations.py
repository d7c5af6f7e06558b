"""Numbered schema steps, gated by `PRAGMA user_version`, so a newer sidecar upgrades an older file in place.

Steps are frozen SQL, not `Model.create_table()`: a step must create the schema as it was when the
step was written, whatever the models look like today. Append new steps; never edit a shipped one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from peewee import SqliteDatabase


class SchemaTooNewError(RuntimeError):
    """The file was written by a newer sidecar; refusing to touch it protects the user's data."""


_STEP_1 = [
    """CREATE TABLE app_meta (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE llm_configs (
        id TEXT PRIMARY KEY NOT NULL,
        custom_name TEXT NOT NULL UNIQUE,
        provider TEXT NOT NULL,
        base_url TEXT,
        use_auth_header INTEGER NOT NULL DEFAULT 1,
        key_in_keychain INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    """CREATE TABLE roles (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        system_prompt TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    """CREATE TABLE personalities (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        behaviors TEXT NOT NULL DEFAULT '{}',
        custom_instructions TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    """CREATE TABLE agents (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        llm_config_id TEXT NOT NULL REFERENCES llm_configs (id) ON DELETE RESTRICT,
        model TEXT NOT NULL,
        role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE RESTRICT,
        personality_id TEXT NOT NULL REFERENCES personalities (id) ON DELETE RESTRICT,
        system_prompt TEXT,
        personality_behaviors TEXT,
        temperature REAL,
        max_tokens INTEGER,
        top_p REAL,
        timeout_ms INTEGER NOT NULL DEFAULT 60000,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    "CREATE INDEX agents_llm_config_id ON agents (llm_config_id)",
    "CREATE INDEX agents_role_id ON agents (role_id)",
    "CREATE INDEX agents_personality_id ON agents (personality_id)",
    """CREATE TABLE conversations (
        id TEXT PRIMARY KEY NOT NULL,
        title TEXT NOT NULL,
        chat_mode TEXT NOT NULL DEFAULT 'manual',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    "CREATE INDEX conversations_created_at_id ON conversations (created_at, id)",
    """CREATE TABLE conversation_agents (
        id TEXT PRIMARY KEY NOT NULL,
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
        enabled INTEGER NOT NULL DEFAULT 1,
        display_order INTEGER NOT NULL,
        color TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (conversation_id, agent_id)
    )""",
    "CREATE INDEX conversation_agents_order ON conversation_agents (conversation_id, display_order)",
    "CREATE INDEX conversation_agents_agent_id ON conversation_agents (agent_id)",
    # reply_to_id is SET NULL: deleting a trigger keeps its replies but never leaves a dangling id.
    """CREATE TABLE messages (
        id TEXT PRIMARY KEY NOT NULL,
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        conversation_agent_id TEXT REFERENCES conversation_agents (id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        included INTEGER NOT NULL DEFAULT 1,
        status TEXT NOT NULL DEFAULT 'complete',
        reply_to_id TEXT REFERENCES messages (id) ON DELETE SET NULL,
        created_at INTEGER NOT NULL,
        usage TEXT
    )""",
    "CREATE INDEX messages_conversation_created_at_id ON messages (conversation_id, created_at, id)",
    "CREATE INDEX messages_agent_reply_to ON messages (conversation_agent_id, reply_to_id)",
    "CREATE INDEX messages_reply_to_id ON messages (reply_to_id)",
    "CREATE INDEX messages_status ON messages (status)",
]

# Step 2: error system messages remember which agent they are about, so `chat:retryAgent` can remove them.
_STEP_2 = [
    """ALTER TABLE messages ADD COLUMN about_conversation_agent_id TEXT
        REFERENCES conversation_agents (id) ON DELETE CASCADE""",
    "CREATE INDEX messages_about_reply_to ON messages (about_conversation_agent_id, reply_to_id)",
]

# Step 3 (v2 engine): a per-config cap on concurrent provider calls, and why a reply ended. ADD COLUMN with a
# constant default fills existing rows without rewriting the table.
_STEP_3 = [
    "ALTER TABLE llm_configs ADD COLUMN max_concurrency INTEGER NOT NULL DEFAULT 8",
    "ALTER TABLE messages ADD COLUMN stop_reason TEXT",
]


def _run(statements: list[str]) -> Callable[[SqliteDatabase], None]:
    def step(sqlite: SqliteDatabase) -> None:
        for sql in statements:
            sqlite.execute_sql(sql)

    return step


STEPS: list[Callable[[SqliteDatabase], None]] = [_run(_STEP_1), _run(_STEP_2), _run(_STEP_3)]
LATEST_VERSION = len(STEPS)


def schema_version(sqlite: SqliteDatabase) -> int:
    return int(sqlite.execute_sql("PRAGMA user_version").fetchone()[0])


def apply_migrations(sqlite: SqliteDatabase, up_to: int | None = None) -> int:
    """Run every step after the file's version (up to `up_to`), each in its own transaction; return the version."""
    target = LATEST_VERSION if up_to is None else up_to
    current = schema_version(sqlite)
    if current > LATEST_VERSION:
        raise SchemaTooNewError(
            f"The database schema is version {current}, newer than this sidecar supports ({LATEST_VERSION})."
        )
    for number in range(current + 1, target + 1):
        with sqlite.atomic():
            STEPS[number - 1](sqlite)
            # user_version is transactional in SQLite: a failed step leaves the old number.
            sqlite.execute_sql(f"PRAGMA user_version = {number:d}")
    return schema_version(sqlite)
