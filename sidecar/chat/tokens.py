"""Token counts without a tokenizer: offline, inside the frozen binary, for any model (CONTRACT v2 §5c).

The estimate is deliberately simple (about four characters of English per token, one token per character of
scripts that BPE vocabularies split finely) and is corrected per model from the input tokens the provider
reports (see `Calibration`).
"""

from __future__ import annotations

import math

# What a chat message costs besides its text (role marker and separators), as the providers' own counts show.
PER_MESSAGE_TOKENS = 4


def estimate_text_tokens(text: str) -> int:
    """Estimated tokens of ``text``: ASCII at four characters a token, anything else at one a character."""
    if not text:
        return 0
    ascii_chars = len(text.encode("ascii", "ignore"))
    return math.ceil(ascii_chars / 4 + (len(text) - ascii_chars))
