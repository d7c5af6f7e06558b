"""Which agents answer: round-robin rotation, `@Name`, and what counts as `SKIP` (pure functions)."""

from __future__ import annotations

import pytest

from sidecar.chat.speakers import (
    could_become_skip,
    is_skip,
    last_speaker,
    mentioned,
    promote,
    rotation,
    round_robin_next,
)
from storage.records import MessageRecord, ParticipantRecord, PersonalityRecord, RoleRecord


def _agent(name: str, order: int, enabled: bool = True) -> ParticipantRecord:
    return ParticipantRecord(
        conversation_agent_id=f"ca-{name}",
        conversation_id="c",
        agent_id=f"a-{name}",
        agent_name=name,
        enabled=enabled,
        display_order=order,
        model="m",
        role=RoleRecord("r", "Role", "", "Help."),
        personality=PersonalityRecord("p", "Plain"),
        llm_config=None,
    )


def _reply(index: int, author: str, status: str = "complete") -> MessageRecord:
    return MessageRecord(f"m{index}", "c", f"ca-{author}", "agent", "text", True, status, None, index)


ANN, BEN, CY = _agent("Ann", 0), _agent("Ben", 1), _agent("Cy", 2)


@pytest.mark.parametrize(
    ("text", "skip"),
    [("SKIP", True), ("skip", True), (" Skip ", True), ("SKIP.", True), ("SKIP!", True), ("\nSKIP\n", True),
     ("SKIP because nothing", False), ("skipping", False), ("", False), ("I skip", False)],
)
def test_only_a_bare_skip_counts_as_a_skip(text: str, skip: bool) -> None:
    assert is_skip(text) is skip


@pytest.mark.parametrize(("text", "held"), [("", True), ("S", True), (" sk", True), ("SKIP", True), ("SKIP.", True),
                                            ("Sure", False), ("SKIP b", False), ("Hello", False)])
def test_text_is_held_back_only_while_it_could_still_be_a_skip(text: str, held: bool) -> None:
    assert could_become_skip(text) is held


def test_round_robin_starts_with_the_first_agent_and_follows_the_last_completed_reply() -> None:
    assert round_robin_next([ANN, BEN, CY], []) == ANN
    assert round_robin_next([ANN, BEN, CY], [_reply(1, "Ann")]) == BEN
    assert round_robin_next([ANN, BEN, CY], [_reply(1, "Cy")]) == ANN  # wraps


def test_a_failed_reply_does_not_move_the_rotation_on() -> None:
    history = [_reply(1, "Ann"), _reply(2, "Ben", status="error")]
    assert last_speaker(history) == "ca-Ann"
    assert round_robin_next([ANN, BEN, CY], history) == BEN


def test_the_rotation_skips_a_speaker_no_longer_enabled() -> None:
    assert rotation([ANN, CY], "ca-Ben") == [ANN, CY]  # Ben gone: start from the top
    assert rotation([ANN, BEN, CY], "ca-Ben") == [CY, ANN, BEN]


def test_at_names_match_whole_names_in_any_case_in_the_order_named_and_never_the_author() -> None:
    bob_smith = _agent("Bob Smith", 3)
    enabled = [ANN, BEN, CY, bob_smith]
    assert mentioned(enabled, "@cy then @ANN please") == [CY, ANN]
    assert mentioned(enabled, "ask @Bob Smith") == [bob_smith]
    assert mentioned(enabled, "@Benjamin and email@Ann.com") == []
    assert mentioned(enabled, "@Ann and @Ben", author="ca-Ann") == [BEN]


def test_named_agents_move_to_the_front_of_the_queue_in_the_order_named() -> None:
    assert promote([ANN, BEN, CY], [CY, BEN]) == [CY, BEN, ANN]
    assert promote([ANN, BEN, CY], []) == [ANN, BEN, CY]
