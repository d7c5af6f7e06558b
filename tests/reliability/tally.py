"""Counts the reliability tests record as they run (frames fuzzed, crash points, faults, streams, RSS, losses, leaks).

Printed in pytest's terminal summary, so a run of either profile yields the numbers docs/reliability.md reports.
"""

from __future__ import annotations

from collections import Counter

_counts: Counter[str] = Counter()
_notes: dict[str, str] = {}
_profile = ["quick"]


def reset(profile: str) -> None:
    _counts.clear()
    _notes.clear()
    _profile[0] = profile


def add(name: str, amount: int = 1) -> None:
    _counts[name] += amount


def note(name: str, text: str) -> None:
    _notes[name] = text


def profile_name() -> str:
    return _profile[0]


def any_recorded() -> bool:
    return bool(_counts or _notes)


def summary_lines() -> list[str]:
    return [f"{name}: {count}" for name, count in sorted(_counts.items())] + [
        f"{name}: {text}" for name, text in sorted(_notes.items())
    ]
