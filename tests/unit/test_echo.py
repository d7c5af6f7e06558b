"""Echo-prefix stripping, whole and streaming; the streaming form must agree with the whole form for any split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.chat.echo import EchoPrefixStripper, strip_echo_prefix


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Ada: Hello there", "Hello there"),
        ("Ada:Hello", "Hello"),
        ("  \nAda:   \n Hello", "Hello"),
        ("ada: lower case name", "lower case name"),
        ("ADA: upper case name", "upper case name"),
        ("Ada:", ""),
        ("Ada: Ada: twice", "Ada: twice"),
        ("Hello Ada: not at the start", "Hello Ada: not at the start"),
        ("Bob: someone else", "Bob: someone else"),
        ("Adam: longer name", "Adam: longer name"),
        ("Ada - no colon", "Ada - no colon"),
        ("Ada : space before colon", "Ada : space before colon"),
        ("  plain with leading space", "  plain with leading space"),
        ("", ""),
        ("Ad", "Ad"),
    ],
)
def test_a_leading_own_name_prefix_is_stripped_and_anything_else_passes(reply: str, expected: str) -> None:
    assert strip_echo_prefix(reply, "Ada") == expected


def test_a_name_with_spaces_and_punctuation_is_matched_literally() -> None:
    assert strip_echo_prefix("Dr. Who (v2): Hi", "Dr. Who (v2)") == "Hi"
    assert strip_echo_prefix("Dr Who (v2): Hi", "Dr. Who (v2)") == "Dr Who (v2): Hi"


def test_an_empty_name_strips_nothing() -> None:
    assert strip_echo_prefix(": hi", "") == ": hi"
    assert EchoPrefixStripper("").feed(": hi") == ": hi"


def stream(deltas: list[str], name: str = "Ada") -> list[str]:
    stripper = EchoPrefixStripper(name)
    return [stripper.feed(d) for d in deltas] + [stripper.finish()]


@pytest.mark.parametrize(
    ("deltas", "emitted"),
    [
        pytest.param(["Hello", " world"], ["Hello", " world", ""], id="plain text passes at once"),
        pytest.param(["A", "d", "a", ":", " ", "Hi"], ["", "", "", "", "", "Hi", ""], id="prefix held then dropped"),
        pytest.param(["Ad", "am says"], ["", "Adam says", ""], id="held text released when it stops matching"),
        pytest.param(["  ", "B"], ["", "  B", ""], id="leading whitespace held until decided"),
        pytest.param(["Ada"], ["", "Ada"], id="an unfinished prefix comes out at finish"),
        pytest.param(["Ada: ", "  "], ["", "", ""], id="prefix and whitespace only"),
        pytest.param(["Ada: Hi", " Ada: again"], ["Hi", " Ada: again", ""], id="only the first prefix"),
    ],
)
def test_the_stream_holds_back_only_while_the_text_could_still_be_the_prefix(
    deltas: list[str], emitted: list[str]
) -> None:
    assert stream(deltas) == emitted


names = st.text(st.sampled_from("AdaBobé ßİ.:"), min_size=1, max_size=6)
bodies = st.text(st.sampled_from("AdaBob: \n\téßİx"), max_size=20)


@st.composite
def replies_and_splits(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    name = draw(names)
    lead = draw(st.sampled_from(["", " ", "\n  "]))
    echoed = draw(st.sampled_from(["", f"{name}:", f"{name.upper()}: ", f"{name.lower()}:\n"]))
    reply = lead + echoed + draw(bodies)
    cuts = sorted(draw(st.lists(st.integers(0, len(reply)), max_size=8)))
    bounds = [0, *cuts, len(reply)]
    return name, reply, [reply[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@given(replies_and_splits())
def test_any_split_of_a_reply_streams_to_the_same_text_as_stripping_it_whole(
    case: tuple[str, str, list[str]],
) -> None:
    name, reply, deltas = case
    assert "".join(stream(deltas, name)) == strip_echo_prefix(reply, name)


@given(names, bodies)
def test_a_reply_that_cannot_be_the_prefix_is_emitted_without_delay(name: str, body: str) -> None:
    reply = "x" + body if not name.lower().startswith("x") else "#" + body
    stripper = EchoPrefixStripper(name)
    assert stripper.feed(reply) == reply
    assert stripper.finish() == ""
