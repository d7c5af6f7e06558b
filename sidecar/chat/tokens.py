"""Token counts without a tokenizer: offline, inside the frozen binary, for any model (CONTRACT v2 §5c).

The estimate is deliberately simple and linear in a text's size: a quarter token per character, plus 3/8 of a
token per UTF-8 byte past the first of each character. So English costs about four characters a token, accented
and Cyrillic text about 0.6 tokens a character, CJK one, emoji about 1.4 — the way BPE vocabularies split them.
Being linear in (characters, bytes), a whole conversation can be estimated from SQL sums (`estimate_sizes`).

Every estimate is corrected per (provider, model) from the input tokens the provider reports (`Calibration`);
counts stay `estimated` either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# What a chat message costs besides its text (role marker and separators), as the providers' own counts show.
PER_MESSAGE_TOKENS = 4
_PER_CHAR = 0.25
_PER_EXTRA_BYTE = 0.375
# A calibration factor stays within these bounds: one odd report (a cached prompt, a proxy counting its own way)
# must not make every later estimate absurd.
MIN_FACTOR, MAX_FACTOR = 0.25, 4.0
# Weight of the newest report in the moving factor (the first report is taken as it is).
_NEWEST_WEIGHT = 0.5


def estimate_sizes(chars: int, utf8_bytes: int) -> float:
    """The raw (uncalibrated) estimate for text of ``chars`` code points and ``utf8_bytes`` bytes."""
    return chars * _PER_CHAR + (utf8_bytes - chars) * _PER_EXTRA_BYTE


def estimate_raw(text: str) -> float:
    return estimate_sizes(len(text), len(text.encode("utf-8", "surrogatepass")))


def estimate_text_tokens(text: str) -> int:
    """Estimated tokens of ``text`` (uncalibrated), rounded up."""
    return math.ceil(estimate_raw(text)) if text else 0


ModelKey = tuple[str, str]  # (provider, model)


@dataclass
class Calibration:
    """Per-model correction factors: reported input tokens / estimated ones, a bounded moving ratio.

    Held by the chat engine in memory (one process, many turns); a model never reported on keeps factor 1.
    """

    _factors: dict[ModelKey, float] = field(default_factory=dict)

    def factor(self, key: ModelKey) -> float:
        return self._factors.get(key, 1.0)

    def observe(self, key: ModelKey, estimated_raw: float, reported: int | None) -> None:
        """Learn from one call: ``estimated_raw`` is the uncalibrated estimate of the request the provider counted
        as ``reported`` input tokens."""
        if reported is None or reported <= 0 or estimated_raw <= 0:
            return
        sample = min(MAX_FACTOR, max(MIN_FACTOR, reported / estimated_raw))
        previous = self._factors.get(key)
        self._factors[key] = sample if previous is None else previous + _NEWEST_WEIGHT * (sample - previous)
