"""Secrets out of log lines and out of streamed replies, however the stream is cut."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.redaction import REDACTED, StreamRedactor, redact, register_secret

SECRETS = ["k3y-canary-0123456789", "abcd"]


def _stream(chunks: list[str]) -> str:
    redactor = StreamRedactor(lambda: sorted(SECRETS, key=len, reverse=True))
    return "".join(redactor.feed(chunk) for chunk in chunks) + redactor.finish()


def _whole(text: str) -> str:
    for secret in sorted(SECRETS, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        (["plain text"], "plain text"),
        (["key: k3y-canary-0123456789."], f"key: {REDACTED}."),
        (["key: k3y-can", "ary-0123", "456789 end"], f"key: {REDACTED} end"),
        (["k3y-canary-01234"], "k3y-canary-01234"),  # a reply that ends mid-prefix keeps its text
        (["ab", "cd", "ab", "x"], f"{REDACTED}abx"),
    ],
)
def test_a_streamed_reply_loses_every_registered_secret_even_split_across_chunks(
    chunks: list[str], expected: str
) -> None:
    assert _stream(chunks) == expected


@given(st.lists(st.sampled_from(["k3y-", "canary-", "0123456789", "ab", "cd", " ", "x", "é🙂"]), max_size=30),
       st.data())
def test_any_split_of_a_reply_redacts_like_the_whole_reply(pieces: list[str], data: st.DataObject) -> None:
    text = "".join(pieces)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=8)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    assert _stream(chunks) == _whole(text)


def test_text_that_only_looks_like_a_key_is_not_touched_in_a_reply() -> None:
    assert _stream(["use sk-your-key-here in the header"]) == "use sk-your-key-here in the header"


def test_a_log_line_loses_registered_secrets_raw_and_json_escaped_and_key_shapes() -> None:
    register_secret('se"cret-value-42')
    line = 'a se"cret-value-42 and "se\\"cret-value-42" and Bearer abcdefghijkl and sk-proj-abcdefghijkl'
    cleaned = redact(line)
    assert "cret-value-42" not in cleaned and "abcdefghijkl" not in cleaned
    assert cleaned.count(REDACTED) == 4
