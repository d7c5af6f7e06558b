"""What the interleaving tests did, counted as they run; printed in the terminal summary for docs/reliability.md."""

from __future__ import annotations

from collections import Counter

_counts: Counter[str] = Counter()
_notes: dict[str, str] = {}


def add(name: str, amount: int = 1) -> None:
    _counts[name] += amount


def merge(counts: Counter[str], prefix: str = "") -> None:
    for name, amount in counts.items():
        _counts[prefix + name] += amount


def note(name: str, text: str) -> None:
    _notes[name] = text


def any_recorded() -> bool:
    return bool(_counts or _notes)


def summary_lines() -> list[str]:
    return [f"{name}: {text}" for name, text in sorted(_notes.items())] + [
        f"{name}: {count}" for name, count in sorted(_counts.items())
    ]
