"""History → agent context: visibility, role mapping, attribution, merging, padding turns and the snapshot rule."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.chat.context import (
    CONTINUE_TURN,
    UNDER_WAY_TURN,
    UNKNOWN_AGENT_NAME,
    ContextMessage,
    TriggerNotFound,
    build_agent_context,
    build_messages,
    select_snapshot,
    to_wire,
)
from sidecar.chat.request_bodies import MissingLlmConfig
from storage.records import (
    LlmConfigRecord,
    MessageRecord,
    ParticipantRecord,
    PersonalityRecord,
    RoleRecord,
)


def agent(ca_id: str, name: str, provider: str = "openai", model: str = "gpt-4o", **kw: Any) -> ParticipantRecord:
    config = LlmConfigRecord("cfg-" + provider, provider, provider, None, True)  # type: ignore[arg-type]
    fields: dict[str, Any] = {
        "conversation_agent_id": ca_id,
        "conversation_id": "conv",
        "agent_id": "agent-" + ca_id,
        "agent_name": name,
        "enabled": True,
        "display_order": 0,
        "model": model,
        "role": RoleRecord("role-" + ca_id, "Helper", "", "Help."),
        "personality": PersonalityRecord("pers-" + ca_id, "Plain"),
        "llm_config": config,
    }
    return ParticipantRecord(**(fields | kw))


def msg(
    id: str,
    role: str,
    content: str,
    at: int,
    by: str | None = None,
    *,
    included: bool = True,
    status: str = "complete",
    reply_to: str | None = None,
) -> MessageRecord:
    return MessageRecord(id, "conv", by, role, content, included, status, reply_to, at)  # type: ignore[arg-type]


ADA = agent("ca-ada", "Ada")
BOB = agent("ca-bob", "Bob")
CY = agent("ca-cy", "Cy")
EVERYONE = [ADA, BOB, CY]


def turns(*pairs: tuple[str, str]) -> list[ContextMessage]:
    return [ContextMessage(role, content) for role, content in pairs]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        pytest.param([], [], id="empty history"),
        pytest.param([msg("1", "user", "Hi", 1)], turns(("user", "Hi")), id="user"),
        pytest.param(
            [msg("1", "user", "Hi", 1), msg("2", "agent", "Hello", 2, "ca-ada")],
            turns(("user", "Hi"), ("assistant", "Hello"), ("user", CONTINUE_TURN)),
            id="own reply is assistant",
        ),
        pytest.param(
            [msg("1", "user", "Hi", 1), msg("2", "agent", "Hello", 2, "ca-bob")],
            turns(("user", "Hi\n\nBob: Hello")),
            id="other agent is an attributed user turn",
        ),
        pytest.param(
            [msg("1", "user", "Hi", 1), msg("2", "agent", "Yo", 2, "ca-gone")],
            turns(("user", f"Hi\n\n{UNKNOWN_AGENT_NAME}: Yo")),
            id="unknown agent",
        ),
    ],
)
def test_rows_map_to_roles_with_other_agents_attributed_by_name(
    history: list[MessageRecord], expected: list[ContextMessage]
) -> None:
    assert build_messages(ADA, EVERYONE, history) == expected


@pytest.mark.parametrize(
    "hidden",
    [
        pytest.param(msg("h", "user", "secret", 2, included=False), id="not included"),
        pytest.param(msg("h", "agent", "partial", 2, "ca-bob", status="streaming"), id="streaming"),
        pytest.param(msg("h", "agent", "partial", 2, "ca-bob", status="error"), id="error"),
        pytest.param(msg("h", "agent", "partial", 2, "ca-bob", status="cancelled"), id="cancelled"),
        pytest.param(msg("h", "agent", "partial", 2, "ca-bob", status="interrupted"), id="interrupted"),
        pytest.param(msg("h", "system", "Agent Bob: failed", 2), id="system row"),
        pytest.param(msg("h", "user", " \n\t ", 2), id="whitespace only"),
        pytest.param(msg("h", "agent", "", 2, "ca-ada"), id="empty own reply"),
    ],
)
def test_rows_a_model_must_not_see_are_left_out(hidden: MessageRecord) -> None:
    history = [msg("1", "user", "One", 1), hidden, msg("3", "user", "Three", 3)]
    assert build_messages(ADA, EVERYONE, history) == turns(("user", "One\n\nThree"))


def test_rows_are_ordered_by_created_at_then_id_whatever_order_they_come_in() -> None:
    history = [
        msg("0b", "agent", "B", 5, "ca-bob"),
        msg("0a", "agent", "A", 5, "ca-ada"),
        msg("z", "user", "first", 1),
        msg("0c", "agent", "C", 5, "ca-cy"),
    ]
    expected = turns(("user", "first"), ("assistant", "A"), ("user", "Bob: B\n\nCy: C"))
    assert build_messages(ADA, EVERYONE, history) == expected


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        pytest.param(
            [msg("1", "user", "a", 1), msg("2", "user", "b", 2), msg("3", "agent", "c", 3, "ca-bob")],
            turns(("user", "a\n\nb\n\nBob: c")),
            id="user turns merge with attributed agent turns",
        ),
        pytest.param(
            [msg("1", "user", "q", 1), msg("2", "agent", "x", 2, "ca-ada"), msg("3", "agent", "y", 3, "ca-ada")],
            turns(("user", "q"), ("assistant", "x\n\ny"), ("user", CONTINUE_TURN)),
            id="own replies merge",
        ),
        pytest.param(
            [msg("1", "agent", "x", 1, "ca-ada"), msg("2", "user", "q", 2)],
            turns(("user", UNDER_WAY_TURN), ("assistant", "x"), ("user", "q")),
            id="leading assistant gets an under-way user turn first",
        ),
        pytest.param(
            [msg("1", "agent", "x", 1, "ca-ada")],
            turns(("user", UNDER_WAY_TURN), ("assistant", "x"), ("user", CONTINUE_TURN)),
            id="a lone own reply is wrapped on both sides",
        ),
        pytest.param(
            [msg("1", "user", "q", 1), msg("2", "agent", "x", 2, "ca-ada"), msg("3", "system", "continue", 3)],
            turns(("user", "q"), ("assistant", "x"), ("user", CONTINUE_TURN)),
            id="ending on assistant gets a continue turn",
        ),
    ],
)
def test_turns_alternate_start_and_end_on_user(history: list[MessageRecord], expected: list[ContextMessage]) -> None:
    result = build_messages(ADA, EVERYONE, history)
    assert result == expected
    assert all(a.role != b.role for a, b in zip(result, result[1:], strict=False))


def test_no_turn_ever_has_empty_content() -> None:
    history = [
        msg("1", "agent", "\n", 1, "ca-ada"),
        msg("2", "user", "  ", 2),
        msg("3", "agent", "\t", 3, "ca-bob"),
        msg("4", "agent", "ok", 4, "ca-ada"),
        msg("5", "user", "", 5),
    ]
    result = build_messages(ADA, EVERYONE, history)
    assert result == turns(("user", UNDER_WAY_TURN), ("assistant", "ok"), ("user", CONTINUE_TURN))


# A turn: user message u1, Ada and Bob reply to it; then u2, Ada replied, Bob still streaming.
TURNS = [
    msg("01", "user", "u1", 1),
    msg("02", "agent", "ada1", 2, "ca-ada", reply_to="01"),
    msg("03", "agent", "bob1", 3, "ca-bob", reply_to="01"),
    msg("04", "user", "u2", 4),
    msg("05", "agent", "ada2", 5, "ca-ada", reply_to="04"),
    msg("06", "agent", "bob2", 6, "ca-bob", status="streaming", reply_to="04"),
]


@pytest.mark.parametrize(
    ("trigger", "expected_ids"),
    [
        pytest.param(None, ["01", "02", "03", "04", "05", "06"], id="no trigger: whole history"),
        pytest.param("01", ["01"], id="first turn: siblings' replies dropped"),
        pytest.param("04", ["01", "02", "03", "04"], id="second turn: earlier replies kept, siblings dropped"),
        pytest.param("02", ["01", "02"], id="rows after the trigger dropped"),
    ],
)
def test_the_snapshot_ends_at_the_trigger_and_drops_replies_to_it(trigger: str | None, expected_ids: list[str]) -> None:
    assert [row.id for row in select_snapshot(list(reversed(TURNS)), trigger)] == expected_ids


def test_a_reply_to_the_trigger_is_dropped_even_if_it_sorts_before_it() -> None:
    history = [msg("1", "agent", "odd", 1, "ca-bob", reply_to="2"), msg("2", "user", "q", 2)]
    assert [row.id for row in select_snapshot(history, "2")] == ["2"]


def test_an_unknown_trigger_is_a_value_error() -> None:
    with pytest.raises(TriggerNotFound) as caught:
        select_snapshot(TURNS, "nope")
    assert isinstance(caught.value, ValueError)


def test_siblings_never_see_each_others_replies_to_the_same_message() -> None:
    for target, other_reply in ((ADA, "bob1"), (BOB, "ada1")):
        ctx = build_agent_context(target, EVERYONE, TURNS, "01")
        assert all(other_reply not in m.content for m in ctx.messages)
        assert ctx.messages == (ContextMessage("user", "u1"),)


def test_build_agent_context_puts_prompt_messages_and_request_together() -> None:
    ctx = build_agent_context(ADA, EVERYONE, TURNS, "04")
    assert ctx.provider == "openai"
    assert ctx.model == "gpt-4o"
    assert ctx.messages == tuple(
        turns(("user", "u1"), ("assistant", "ada1"), ("user", "Bob: bob1\n\nu2")),
    )
    assert ctx.system_prompt.startswith("You are Ada,")
    assert ctx.request["messages"][0] == {"role": "system", "content": ctx.system_prompt}
    assert ctx.request["messages"][1:] == [{"role": m.role, "content": m.content} for m in ctx.messages]


def test_build_agent_context_without_llm_config_is_a_value_error() -> None:
    with pytest.raises(MissingLlmConfig) as caught:
        build_agent_context(agent("ca-x", "X", llm_config=None), EVERYONE, TURNS, None)
    assert isinstance(caught.value, ValueError)


def test_an_unknown_trigger_is_reported_before_a_missing_config() -> None:
    with pytest.raises(TriggerNotFound):
        build_agent_context(agent("ca-x", "X", llm_config=None), EVERYONE, TURNS, "nope")


def test_to_wire_uses_camel_case_and_copies_the_request() -> None:
    ctx = build_agent_context(BOB, EVERYONE, TURNS[:2], None)
    wire = to_wire(ctx)
    assert set(wire) == {"systemPrompt", "messages", "provider", "model", "request", "budget"}
    assert wire["budget"]["keptCount"] == 2 and wire["budget"]["droppedCount"] == 0
    assert wire["budget"]["contextWindow"] == 128000 and wire["budget"]["estimated"] is True
    assert wire["messages"] == [{"role": "user", "content": "u1\n\nAda: ada1"}]
    wire["request"]["messages"].clear()
    assert ctx.request["messages"]
