"""`messages:search` over 100,000 messages, and `conversations:import` of 100,000 messages in one file.

The search corpus is 20 conversations of 5,000 messages imported through `conversations:import`, with text drawn
from a Zipf-distributed vocabulary of 8,000 made-up words (8–60 words a message, so the commonest word is in nearly
every message, as "the" is). A query is a word (or two) picked uniformly from the vocabulary, the way a person
searches for a word they remember, not for a stop word; the commonest word is reported on its own row.

The import row sends one file of 100,000 short messages (what fits in a 16 MiB frame) to a fresh sidecar and,
while it runs, `messages:list` of another conversation back to back: its worst wait shows how long the final
one-transaction copy holds the query lane.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.proc import Proc, sidecar
from bench.stats import Row, Summary, spread_ms

CONVERSATIONS = 20
PER_CONVERSATION = 5_000
VOCABULARY = 8_000
AGENTS = 3
TARGET_MS = 20.0


def vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = {"".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(VOCABULARY * 2)}
    return sorted(words)[:VOCABULARY]


def conversation_file(title: str, count: int, text: Any, stamp_base: int) -> str:
    """A `ConversationFile`: a user message, then each of the agents answering it, over and over."""
    members = [{"name": f"Searcher{i}", "model": "demo", "llmConfig": {"name": "Demo (offline)", "provider": "demo"},
                "role": {"name": "Bench role", "systemPrompt": "Help."}, "personality": {"name": "Bench mood"},
                "enabled": True, "displayOrder": i, "color": f"--agent-{i + 1}", "addedAt": "2026-01-01T00:00:00.000Z"}
               for i in range(AGENTS)]  # fmt: skip
    messages: list[dict[str, Any]] = []
    for i in range(count):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(stamp_base + i))
        if i % (AGENTS + 1) == 0:
            messages.append({"role": "user", "content": text(), "createdAt": stamp})
        else:
            messages.append({"role": "agent", "agent": i % (AGENTS + 1) - 1, "replyTo": i - i % (AGENTS + 1),
                             "content": text(), "createdAt": stamp, "stopReason": "end"})  # fmt: skip
    return json.dumps({
        "format": "chat-sidecar.conversation", "formatVersion": 1, "agents": members, "messages": messages,
        "conversation": {"title": title, "chatMode": "manual", "createdAt": "2026-01-01T00:00:00.000Z",
                         "updatedAt": "2026-01-01T00:00:00.000Z"},
    }, separators=(",", ":"))  # fmt: skip


def timed(proc: Proc, params: dict[str, Any]) -> float:
    request_id, sent = proc.request("messages:search", params)
    answered, response = proc.response(request_id)
    if "error" in response:
        raise RuntimeError(f"search failed: {response['error']}")
    return (answered - sent) * 1000


def search_rows(quick: bool) -> list[Row]:
    rng = random.Random(11)
    words = vocabulary(rng)
    weights = [1 / rank for rank in range(1, len(words) + 1)]

    def text() -> str:
        return " ".join(rng.choices(words, weights, k=rng.randint(8, 60)))

    repeats = 60 if quick else 300
    with tempfile.TemporaryDirectory() as tmp:
        proc = sidecar(Path(tmp) / "data")
        try:
            conversation_ids = [
                proc.call("conversations:import", {"content": conversation_file(f"bench {c}", PER_CONVERSATION, text,
                                                                                  1_767_225_600 + c * 10_000)})["id"]
                for c in range(CONVERSATIONS)
            ]  # fmt: skip
            for word in words[:50]:  # warm-up: the pages of the index in the cache, as in a session in use
                timed(proc, {"query": word})
            cases = {
                "one word": lambda: {"query": rng.choice(words)},
                "two words": lambda: {"query": f"{rng.choice(words)} {rng.choice(words[:400])}"},
                "one word, one conversation": lambda: {"query": rng.choice(words),
                                                        "conversationId": rng.choice(conversation_ids)},
                "the commonest word (in ~97 % of messages)": lambda: {"query": words[0]},
            }  # fmt: skip
            samples = {name: [timed(proc, make()) for _ in range(repeats)] for name, make in cases.items()}
        finally:
            proc.close()
    rows = []
    for name, values in samples.items():
        s = Summary.of(values)
        informative = name.startswith("the commonest")
        rows.append(Row(f"messages:search over {CONVERSATIONS * PER_CONVERSATION:,} messages, {name}", s.p50, "ms",
                        "" if informative else f"p50 ≤ {TARGET_MS:g} ms", None if informative else s.p50 <= TARGET_MS,
                        spread_ms(s), note=f"p99 {s.p99:.1f} ms; limit 50, bm25 order, snippets included"))
    return rows


def import_rows() -> list[Row]:
    rng = random.Random(5)
    words = vocabulary(rng)

    def text() -> str:
        return " ".join(rng.choices(words, k=rng.randint(3, 10)))

    content = conversation_file("bulk", 100_000, text, 1_767_225_600)
    with tempfile.TemporaryDirectory() as tmp:
        proc = sidecar(Path(tmp) / "data")
        try:
            other = proc.call("conversations:create", {"title": "meanwhile"})["id"]
            importing, sent = proc.request("conversations:import", {"content": content})
            waits: list[float] = []
            while True:
                request_id, asked = proc.request("messages:list", {"conversationId": other})
                answered, _ = proc.response(request_id)
                waits.append((answered - asked) * 1000)
                if proc.answered(importing):
                    break
            done, response = proc.response(importing)
            if "error" in response:
                raise RuntimeError(f"import failed: {response['error']}")
        finally:
            proc.close()
    total = (done - sent) * 1000
    s = Summary.of(waits)
    return [
        Row("conversations:import of 100,000 messages (one 16 MiB-class file)", total / 1000, "s", "", None,
            f"file {len(content) / 2**20:.1f} MiB", note="check, stage in chunks, then one transaction"),
        Row("messages:list answered during that import: worst wait", s.max, "ms", "", None,
            f"p50 {s.p50:.1f} ms, n={s.n}", note="the worst is the final copy holding the query lane"),
    ]


def measure(quick: bool) -> list[Row]:
    return search_rows(quick) + import_rows()


if __name__ == "__main__":
    import sys

    for row in measure("--quick" in sys.argv):
        print(row.measure, row.value, row.unit, row.spread, row.note)
