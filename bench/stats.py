"""Order statistics over repeated runs, and the rows of the result table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in 0..100 (numpy's default method)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    n: int
    p50: float
    p5: float
    p95: float
    p99: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        return cls(
            n=len(values),
            p50=percentile(values, 50),
            p5=percentile(values, 5),
            p95=percentile(values, 95),
            p99=percentile(values, 99),
            min=min(values) if values else math.nan,
            max=max(values) if values else math.nan,
        )


@dataclass
class Row:
    """One line of the table: a measured figure against its target."""

    measure: str
    value: float  # the headline figure (a median unless `stat` says otherwise)
    unit: str
    target: str
    ok: bool | None  # None: informational, no target
    spread: str = ""  # "p5–p95 a–b, n=N" or "min–max …"
    ideal: str = ""  # the ideal measured in the same run and the ratio against it
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "n/a"
    if unit in ("ms", "MB", "%", "x"):
        digits = 3 if abs(value) < 1 else 2 if abs(value) < 10 else 1
        return f"{value:.{digits}f} {unit}".strip()
    if unit == "req/s":
        return f"{value:,.0f} {unit}"
    return f"{value:g} {unit}".strip()


def spread_ms(s: Summary, unit: str = "ms") -> str:
    return f"p5–p95 {fmt(s.p5, unit)}–{fmt(s.p95, unit)}, min–max {fmt(s.min, unit)}–{fmt(s.max, unit)}, n={s.n}"
