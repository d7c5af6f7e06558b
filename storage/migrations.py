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

# Step 4 (v2 modes): a conversation's auto-mode settings as JSON; NULL means every default.
_STEP_4 = [
    "ALTER TABLE conversations ADD COLUMN auto_settings TEXT",
]


def _run(statements: list[str]) -> Callable[[SqliteDatabase], None]:
    def step(sqlite: SqliteDatabase) -> None:
        for sql in statements:
            sqlite.execute_sql(sql)

    return step


# Step 5 (v2 versions and edits). A reply's versions share a group: `version_of_id` is the first version's id
# (NULL on that first version and on every row from before). It is a label, not a foreign key, so a group
# stays one group when its first version is deleted. Every old row reads version 1 of 1, active, never edited.
_STEP_5 = [
    "ALTER TABLE messages ADD COLUMN version_of_id TEXT",
    "ALTER TABLE messages ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE messages ADD COLUMN active INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE messages ADD COLUMN edited_at INTEGER",
    "CREATE INDEX messages_version_of ON messages (version_of_id) WHERE version_of_id IS NOT NULL",
    """CREATE INDEX messages_conversation_versions ON messages (conversation_id, version_of_id)
        WHERE version_of_id IS NOT NULL""",
    # Deleting one version (by any path: messages:delete, a retry clearing a failed attempt) keeps the group's
    # numbers 1..n and, when the active one goes, makes the newest complete version active.
    """CREATE TRIGGER messages_version_removed AFTER DELETE ON messages
        WHEN old.role = 'agent'
            AND (old.version_of_id IS NOT NULL OR EXISTS (SELECT 1 FROM messages WHERE version_of_id = old.id))
        BEGIN
            UPDATE messages SET version = version - 1
                WHERE version > old.version
                    AND (version_of_id = coalesce(old.version_of_id, old.id) OR id = old.version_of_id);
            UPDATE messages SET active = 1
                WHERE old.active AND id = (
                    SELECT id FROM messages
                    WHERE version_of_id = coalesce(old.version_of_id, old.id) OR id = old.version_of_id
                    ORDER BY status = 'complete' DESC, status != 'streaming' DESC, version DESC
                    LIMIT 1);
        END""",
]

# The full-text index of message content (FTS5, external content: it stores no copy of the text). Rows are
# indexed once they stop `streaming` (so a reply's partial saves cost nothing here), through the triggers.
# Frozen like a step: `ensure_search_index` re-creates exactly this when a file lost it (see below).
SEARCH_INDEX = [
    """CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, content = 'messages', content_rowid = 'rowid', tokenize = 'unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.status != 'streaming'
        BEGIN
            INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, new.content);
        END""",
    """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.status != 'streaming'
        BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
        END""",
    """CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, status ON messages
        WHEN NOT (old.status = 'streaming' AND new.status = 'streaming')
            AND (old.content IS NOT new.content OR old.status = 'streaming' OR new.status = 'streaming')
        BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content)
                SELECT 'delete', old.rowid, old.content WHERE old.status != 'streaming';
            INSERT INTO messages_fts (rowid, content) SELECT new.rowid, new.content WHERE new.status != 'streaming';
        END""",
    "INSERT INTO messages_fts (rowid, content) SELECT rowid, content FROM messages WHERE status != 'streaming'",
]
SEARCH_TRIGGERS = ("messages_fts_insert", "messages_fts_delete", "messages_fts_update")


def fts5_available(sqlite: SqliteDatabase) -> bool:
    """Whether this SQLite has FTS5 (Python's and the frozen build's do; a system SQLite built without it does not)."""
    try:
        sqlite.execute_sql("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x)")
    except Exception:  # sqlite3.OperationalError "no such module: fts5"; peewee wraps it in its own class
        return False
    sqlite.execute_sql("DROP TABLE temp.fts5_probe")
    return True


def _step_5(sqlite: SqliteDatabase) -> None:
    _run(_STEP_5)(sqlite)
    if fts5_available(sqlite):  # without FTS5 the step still succeeds; messages:search then says it is unavailable
        _run(SEARCH_INDEX)(sqlite)


# Step 6 (v2 long conversations): an agent's own context window in tokens, overriding the model catalogue (a
# local model served by Ollama or LM Studio, say). NULL, as on every agent from before, means "the catalogue's".
_STEP_6 = [
    "ALTER TABLE agents ADD COLUMN context_window INTEGER",
]

# Step 7 (v2 long conversations): a turn's reads must not grow with the history (CONTRACT §5c). The rows a model
# may see ("visible") get a partial covering index and, per conversation and author (a conversation agent id, or
# '' for user rows), a count and the sizes of their text kept by triggers: a turn that read only its budget's newest
# rows learns how many older ones it dropped without touching them, and `conversations:contextUsage` sums the whole
# history from a few rows. Completed replies get a partial index, so "who spoke last" is one index step. The WHERE
# terms are the ones `messages.VISIBLE_SQL` repeats literally (SQLite matches a partial index by its terms).
_VISIBLE = "{row}included = 1 AND {row}status = 'complete' AND {row}role != 'system' AND {row}active = 1"
_SIZES = "new.conversation_id, COALESCE(new.conversation_agent_id, ''), 1, LENGTH(new.content), " \
    "LENGTH(CAST(new.content AS BLOB))"
# Taking a row away only updates: a conversation being deleted may have lost its counts already (cascade).
_TAKE_SIZES = """UPDATE visible_counts SET visible = visible - 1, chars = chars - LENGTH(old.content),
                utf8_bytes = utf8_bytes - LENGTH(CAST(old.content AS BLOB))
            WHERE conversation_id = old.conversation_id AND author = COALESCE(old.conversation_agent_id, '')
                AND {visible};"""
_ADD_SIZES = """INSERT INTO visible_counts (conversation_id, author, visible, chars, utf8_bytes)
            SELECT {sizes} WHERE {visible}
            ON CONFLICT (conversation_id, author) DO UPDATE SET visible = visible + excluded.visible,
                chars = chars + excluded.chars, utf8_bytes = utf8_bytes + excluded.utf8_bytes;"""
_STEP_7 = [
    f"""CREATE INDEX messages_visible ON messages (conversation_id, created_at, id, version_of_id)
        WHERE {_VISIBLE.format(row="")}""",
    """CREATE INDEX messages_completed_replies ON messages (conversation_id, created_at, id, conversation_agent_id)
        WHERE role = 'agent' AND status = 'complete'""",
    """CREATE TABLE visible_counts (
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        author TEXT NOT NULL,
        visible INTEGER NOT NULL,
        chars INTEGER NOT NULL,
        utf8_bytes INTEGER NOT NULL,
        PRIMARY KEY (conversation_id, author)
    ) WITHOUT ROWID""",
    f"""INSERT INTO visible_counts (conversation_id, author, visible, chars, utf8_bytes)
        SELECT conversation_id, COALESCE(conversation_agent_id, ''), COUNT(*), SUM(LENGTH(content)),
            SUM(LENGTH(CAST(content AS BLOB)))
        FROM messages WHERE {_VISIBLE.format(row="")} GROUP BY 1, 2""",
    f"""CREATE TRIGGER messages_visible_insert AFTER INSERT ON messages WHEN {_VISIBLE.format(row="new.")}
        BEGIN
            {_ADD_SIZES.format(sizes=_SIZES, visible="1")}
        END""",
    f"""CREATE TRIGGER messages_visible_delete AFTER DELETE ON messages WHEN {_VISIBLE.format(row="old.")}
        BEGIN
            {_TAKE_SIZES.format(visible="1")}
        END""",
    f"""CREATE TRIGGER messages_visible_update AFTER UPDATE OF included, status, role, active, content ON messages
        WHEN ({_VISIBLE.format(row="old.")}) OR ({_VISIBLE.format(row="new.")})
        BEGIN
            {_TAKE_SIZES.format(visible=_VISIBLE.format(row="old."))}
            {_ADD_SIZES.format(sizes=_SIZES, visible=_VISIBLE.format(row="new."))}
        END""",
]

STEPS: list[Callable[[SqliteDatabase], None]] = [
    _run(_STEP_1), _run(_STEP_2), _run(_STEP_3), _run(_STEP_4), _step_5, _run(_STEP_6), _run(_STEP_7)
]  # fmt: skip
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


def ensure_search_index(sqlite: SqliteDatabase) -> bool:
    """Keep the search index usable at start-up, after `mark_interrupted` (so no row is `streaming`); return whether
    search works.

    Without FTS5 the triggers are dropped, since every write to `messages` would fail on them; with FTS5 again, a
    missing index is built, and an index that lost its triggers is refilled (it missed the writes made meanwhile).
    """
    tables = {row[0] for row in sqlite.execute_sql("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
    if not fts5_available(sqlite):
        with sqlite.atomic():
            for trigger in SEARCH_TRIGGERS:
                sqlite.execute_sql(f"DROP TRIGGER IF EXISTS {trigger}")
        return False
    if "messages_fts" in tables and all(trigger in tables for trigger in SEARCH_TRIGGERS):
        return True
    with sqlite.atomic():
        if "messages_fts" in tables:
            sqlite.execute_sql("DROP TABLE messages_fts")
        for trigger in SEARCH_TRIGGERS:
            sqlite.execute_sql(f"DROP TRIGGER IF EXISTS {trigger}")
        _run(SEARCH_INDEX)(sqlite)
    return True
