"""The built-in model catalogue (`models.json` beside this file): context windows, output limits and prices.

Read once, on first use. A model matches an entry by its exact id, else by the longest entry id it starts with
followed by ``-`` (dated snapshots such as ``gpt-4o-2024-08-06`` or ``claude-sonnet-4-20250514``); a routed
name like ``openai/gpt-4o`` counts by its last segment. Unknown models have no entry: callers fall back to
`DEFAULT_CONTEXT_WINDOW` and an ``unpriced`` cost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

# CONTRACT §5c: a model neither the agent nor the catalogue knows gets this window.
DEFAULT_CONTEXT_WINDOW = 8192


@dataclass(frozen=True)
class Pricing:
    """US dollars per million tokens."""

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None

    def to_wire(self) -> dict[str, float]:
        wire = {"inputPerMTok": self.input_per_mtok, "outputPerMTok": self.output_per_mtok}
        if self.cached_input_per_mtok is not None:
            wire["cachedInputPerMTok"] = self.cached_input_per_mtok
        return wire


@dataclass(frozen=True)
class ModelInfo:
    id: str
    context_window: int | None
    max_output_tokens: int | None
    pricing: Pricing | None  # None: no price known, so a cost is `unpriced`, never made up
    source: str
    as_of: str


def lookup(provider: str, model: str) -> ModelInfo | None:
    """The catalogue entry for ``model`` on ``provider``, or None."""
    entries = _catalogue().get(provider, {})
    name = model.rsplit("/", 1)[-1].strip().lower()
    exact = entries.get(name)
    if exact is not None:
        return exact
    prefixes = [entry_id for entry_id in entries if name.startswith(entry_id + "-")]
    return entries[max(prefixes, key=len)] if prefixes else None


def models_for(provider: str) -> list[ModelInfo]:
    """Every catalogue entry of ``provider``, in the file's order."""
    return list(_catalogue().get(provider, {}).values())


def context_window(provider: str | None, model: str, agent_override: int | None = None) -> int:
    """The agent's own window, else the catalogue's, else the default."""
    if agent_override is not None:
        return agent_override
    info = lookup(provider, model) if provider is not None else None
    if info is not None and info.context_window is not None:
        return info.context_window
    return DEFAULT_CONTEXT_WINDOW


@cache
def _catalogue() -> dict[str, dict[str, ModelInfo]]:
    raw = json.loads(resources.files(__package__).joinpath("models.json").read_text(encoding="utf-8"))
    return {
        provider: {entry["id"].lower(): _entry(entry) for entry in entries}
        for provider, entries in raw.items()
        if not provider.startswith("_")
    }


def _entry(raw: dict[str, Any]) -> ModelInfo:
    pricing = raw.get("pricing")
    return ModelInfo(
        id=raw["id"],
        context_window=raw.get("contextWindow"),
        max_output_tokens=raw.get("maxOutputTokens"),
        pricing=None
        if pricing is None
        else Pricing(pricing["inputPerMTok"], pricing["outputPerMTok"], pricing.get("cachedInputPerMTok")),
        source=raw["source"],
        as_of=raw["asOf"],
    )
