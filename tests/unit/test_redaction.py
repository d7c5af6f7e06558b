"""Secrets out of log lines and error texts; placeholders that are too short to be keys are never searched for."""

from __future__ import annotations

import uuid

import pytest

from sidecar.redaction import MIN_SECRET_LENGTH, REDACTED, redact, register_secret


def test_a_log_line_loses_registered_secrets_raw_and_json_escaped_and_key_shapes() -> None:
    register_secret('se"cret-value-42')
    line = 'a se"cret-value-42 and "se\\"cret-value-42" and Bearer abcdefghijkl and sk-proj-abcdefghijkl'
    cleaned = redact(line)
    assert "cret-value-42" not in cleaned and "abcdefghijkl" not in cleaned
    assert cleaned.count(REDACTED) == 4


@pytest.mark.parametrize("placeholder", ["here", "none", "ollama", "lm-studio", "eleven-char"])
def test_a_key_shorter_than_12_characters_is_never_searched_for(placeholder: str) -> None:
    """CONTRACT §4: placeholders such as `ollama` occur in ordinary text, and cutting them out protects nothing."""
    assert len(placeholder) < MIN_SECRET_LENGTH == 12
    register_secret(placeholder)
    line = f'{{"msg": "ask {placeholder} here", "model": "{placeholder}:latest"}}'
    assert redact(line) == line


def test_a_key_of_12_characters_or_more_is_redacted_wherever_it_appears() -> None:
    key = uuid.uuid4().hex[:12]  # unshaped: only the registry can catch it
    register_secret(key)
    assert redact(f"x{key}y and {key}") == f"x{REDACTED}y and {REDACTED}"

