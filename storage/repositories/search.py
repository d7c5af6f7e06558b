"""`messages:search`: full-text search over message content with SQLite FTS5, best match (bm25) first.

The query is plain words typed by a user. Each word becomes one FTS5 string (double quotes doubled), so nothing in
it is FTS5 syntax (`"`, `*`, `NEAR`, `AND`, `-`, `:`, `^`): every query gets an answer, maybe empty, never an error.
Words are ANDed; a word with punctuation inside (`e-mail`) matches its parts as a phrase.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from storage.errors import FeatureMissing
from storage.models import Conversation, Message
from storage.repositories.conversations import require_conversation
from storage.repositories.messages import count_versions, group_of, to_wire

# Matches are marked in FTS5's snippet with two private-use characters, then turned into offsets.
_OPEN, _CLOSE = "\ue000", "\ue001"
SNIPPET_TOKENS = 24  # words of context around the match (FTS5 allows at most 64)
ELLIPSIS = "…"
_SEARCH_TRIGGER = "messages_fts_insert"


@dataclass(frozen=True)
class Snippet:
    text: str
    highlights: list[tuple[int, int]]  # [start, end) in UTF-16 code units, as JavaScript strings index


def fts_query(text: str) -> str | None:
    """Plain words → an FTS5 query that ANDs them literally; None when no word has a letter or digit in it.

    FTS5's unicode61 tokenizer keeps letters, digits and private-use characters and splits on everything else, so
    a word of punctuation or emoji alone could never match: such words are dropped here.
    """
    # FTS5 reads its query as a C string: a NUL would end it inside a quoted word. Control characters are never
    # part of a token anyway, so they separate words here.
    plain = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    words = [word for word in plain.split() if any(_is_token_char(ch) for ch in word)]
    if not words:
        return None
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def _is_token_char(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] in "LN" or category == "Co"


def search_messages(query: str, conversation_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """`[{message, conversationTitle, snippet, highlights}]`: active versions only, best match first."""
    database = Message._meta.database
    with database.atomic():  # one snapshot for the ranking, the snippets and the rows
        _require_index(database)
        if conversation_id is not None:
            require_conversation(conversation_id)
        match = fts_query(query)
        if match is None:
            return []
        ranked = _ranked_rowids(database, match, conversation_id, limit)
        if not ranked:
            return []
        snippets = {rowid: _snippet(database, match, rowid) for rowid in ranked}
        rows = {row.fts_rowid: row for row in _rows_by_rowid(ranked)}
        titles = _titles({row.conversation_id for row in rows.values()})
    counts = count_versions(group_of(row) for row in rows.values())
    results = []
    for rowid in ranked:
        row = rows[rowid]
        snippet = snippets[rowid]
        results.append({
            "message": to_wire(row, counts.get(group_of(row), 1)),
            "conversationTitle": titles[row.conversation_id],
            "snippet": snippet.text,
            "highlights": [{"start": start, "end": end} for start, end in snippet.highlights],
        })  # fmt: skip
    return results


def _require_index(database: Any) -> None:
    found = database.execute_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?", (_SEARCH_TRIGGER,)
    ).fetchone()
    if found is None:  # `ensure_search_index` drops the triggers when this SQLite has no FTS5
        raise FeatureMissing(
            "Search is not available: this system's SQLite was built without full-text search (FTS5)", feature="fts5"
        )


def _ranked_rowids(database: Any, match: str, conversation_id: str | None, limit: int) -> list[int]:
    sql = (
        "SELECT messages_fts.rowid FROM messages_fts JOIN messages ON messages.rowid = messages_fts.rowid"
        " WHERE messages_fts MATCH ? AND messages.active"
    )
    params: list[Any] = [match]
    if conversation_id is not None:
        sql += " AND messages.conversation_id = ?"
        params.append(conversation_id)
    sql += " ORDER BY bm25(messages_fts), messages.created_at DESC, messages.id DESC LIMIT ?"
    params.append(limit)
    return [rowid for (rowid,) in database.execute_sql(sql, params)]


def _snippet(database: Any, match: str, rowid: int) -> Snippet:
    (marked,) = database.execute_sql(
        "SELECT snippet(messages_fts, 0, ?, ?, ?, ?) FROM messages_fts WHERE messages_fts MATCH ? AND rowid = ?",
        (_OPEN, _CLOSE, ELLIPSIS, SNIPPET_TOKENS, match, rowid),
    ).fetchone()
    return split_marks(marked)


def split_marks(marked: str) -> Snippet:
    """FTS5's marked snippet → plain text and the highlighted ranges (UTF-16 offsets)."""
    text: list[str] = []
    highlights: list[tuple[int, int]] = []
    offset = 0
    start: int | None = None
    for ch in marked:
        if ch == _OPEN:
            start = offset
        elif ch == _CLOSE and start is not None:
            highlights.append((start, offset))
            start = None
        else:
            text.append(ch)
            offset += 2 if ord(ch) > 0xFFFF else 1
    return Snippet("".join(text), highlights)


def _rows_by_rowid(rowids: list[int]) -> list[Message]:
    marks = ", ".join("?" * len(rowids))
    return list(Message.raw(f"SELECT *, rowid AS fts_rowid FROM messages WHERE rowid IN ({marks})", *rowids))


def _titles(conversation_ids: set[str]) -> dict[str, str]:
    query = Conversation.select(Conversation.id, Conversation.title).where(Conversation.id.in_(list(conversation_ids)))
    return {conversation.id: conversation.title for conversation in query}
