"""`build_agent_context` in process, over synthetic records: 100 and 10,000 messages."""

from __future__ import annotations

import random
import time

from bench.stats import Row, Summary, spread_ms
from sidecar.chat.context import build_agent_context
from storage.records import LlmConfigRecord, MessageRecord, ParticipantRecord, PersonalityRecord, RoleRecord

AGENTS = 5


def participants() -> list[ParticipantRecord]:
    role = RoleRecord("r1", "Critic", "Finds the weak spots.", "You are a careful critic. " * 20)
    personality = PersonalityRecord("p1", "Warm", {"openness": 70, "humor": 40, "randomness": 60}, "Be kind.")
    config = LlmConfigRecord("c1", "bench", "openai", "http://127.0.0.1:1/v1", True)
    return [
        ParticipantRecord(f"ca{i}", "conv", f"a{i}", f"Agent{i}", True, i, "gpt-4o", role, personality, config)
        for i in range(AGENTS)
    ]


def history(size: int, seed: int = 7) -> list[MessageRecord]:
    """A turn-shaped history: one user message, then a reply from each agent, over and over."""
    rng = random.Random(seed)
    rows: list[MessageRecord] = []
    trigger = ""
    for i in range(size):
        created = 1_700_000_000_000 + i
        if i % (AGENTS + 1) == 0:
            trigger = f"m{i:06d}"
            rows.append(MessageRecord(trigger, "conv", None, "user", "word " * rng.randint(5, 60), True, "complete",
                                      None, created))
        else:
            agent = i % (AGENTS + 1) - 1
            rows.append(MessageRecord(f"m{i:06d}", "conv", f"ca{agent}", "agent", "reply " * rng.randint(20, 200),
                                      True, "complete", trigger, created))
    return rows


def measure(quick: bool) -> list[Row]:
    people = participants()
    rows: list[Row] = []
    for size, repeats, target in ((100, 300 if not quick else 100, 2.0), (10_000, 40 if not quick else 10, 60.0)):
        records = history(size)
        last_user = next(r.id for r in reversed(records) if r.role == "user")
        for label, trigger in (("whole history", None), ("turn snapshot", last_user)):
            build_agent_context(people[0], people, records, trigger)  # warm-up
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                build_agent_context(people[0], people, records, trigger)
                times.append((time.perf_counter() - start) * 1000)
            s = Summary.of(times)
            rows.append(Row(f"buildAgentContext, {size:,} messages ({label})", s.p50, "ms", f"p50 ≤ {target:g} ms",
                            s.p50 <= target, spread_ms(s), note=f"{target / s.p50:.1f}x headroom"))
    return rows
