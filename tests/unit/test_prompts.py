"""System prompts: trait bands and wording, overrides, participants, and golden prompts for a few agents.

The golden prompts live in tests/unit/golden/prompt_<case>.txt. After an intended wording change,
regenerate them and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_prompts.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from sidecar.chat.prompts import (
    KNOWN_TRAITS,
    build_system_prompt,
    describe_trait,
    effective_behaviors,
    humanise_trait,
    trait_band,
)
from storage.records import LlmConfigRecord, ParticipantRecord, PersonalityRecord, RoleRecord

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"


def agent(ca_id: str, name: str, **kw: Any) -> ParticipantRecord:
    fields: dict[str, Any] = {
        "conversation_agent_id": ca_id,
        "conversation_id": "conv",
        "agent_id": "agent-" + ca_id,
        "agent_name": name,
        "enabled": True,
        "display_order": 0,
        "model": "gpt-4o",
        "role": RoleRecord("role-" + ca_id, "Assistant", "", "Help the user."),
        "personality": PersonalityRecord("pers-" + ca_id, "Plain"),
        "llm_config": LlmConfigRecord("cfg", "OpenAI", "openai", None, True),
    }
    return ParticipantRecord(**(fields | kw))


CRITIC = agent(
    "ca-ada",
    "Ada",
    display_order=0,
    role=RoleRecord(
        "r-critic",
        "Critic",
        "Finds the weak spots in an argument.",
        "Review every claim in the conversation and point out flaws, gaps and unstated assumptions.",
    ),
    personality=PersonalityRecord(
        "p-sceptic",
        "Sceptic",
        {"agreeableness": 15, "assertiveness": 70, "brevity": 85, "humor": 30, "dryWit": 85, "focus": 55},
        "Ask for evidence before accepting a claim.",
    ),
    personality_behaviors={"assertiveness": 20, "humor": -40, "curiosity": 30},
    system_prompt="Address the user as 'you', never by name.",
)
RESEARCHER = agent(
    "ca-bob",
    "Bob",
    display_order=1,
    role=RoleRecord("r-research", "Researcher", "Digs up facts.", "Back statements with sources."),
)
POET = agent(
    "ca-cy",
    "Cy",
    display_order=2,
    role=RoleRecord("r-poet", "Poet", "", "Answer in verse."),
    personality=PersonalityRecord(
        "p-dreamer",
        "Dreamer",
        {"openness": 95, "randomness": 90, "responseLength": 30, "formality": 10, "empathy": 75},
        "",
    ),
)
SLEEPER = agent("ca-dee", "Dee", enabled=False, role=RoleRecord("r-x", "Disabled role", "", "Nothing."))
ALL_TRAITS = agent(
    "ca-eve",
    "Eve",
    role=RoleRecord("r-all", "Tester", "", "Exercise every trait."),
    personality=PersonalityRecord(
        "p-all", "Everything", {trait: (i * 37) % 101 for i, trait in enumerate(KNOWN_TRAITS)}, ""
    ),
)
TRIO = [CRITIC, RESEARCHER, POET, SLEEPER]

GOLDEN_CASES = {
    "critic_in_a_trio": (CRITIC, TRIO),
    "poet_in_a_trio": (POET, TRIO),
    "solo_assistant": (agent("ca-solo", "Solo"), [agent("ca-solo", "Solo"), SLEEPER]),
    "every_known_trait": (ALL_TRAITS, [ALL_TRAITS]),
}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_the_system_prompt_matches_its_golden_file(case: str) -> None:
    target, participants = GOLDEN_CASES[case]
    prompt = build_system_prompt(target, participants)
    path = GOLDEN_DIR / f"prompt_{case}.txt"
    if UPDATE_GOLDEN:
        path.parent.mkdir(exist_ok=True)
        path.write_text(prompt + "\n", encoding="utf-8")
    assert prompt + "\n" == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_no_template_syntax_reaches_the_prompt(case: str) -> None:
    prompt = build_system_prompt(*GOLDEN_CASES[case])
    assert not re.search(r"[{}]|<[A-Za-z_]+>|\$\w|%\(|\[\[", prompt)


def test_user_text_with_braces_is_kept_literally_not_formatted() -> None:
    target = agent("ca-x", "X", system_prompt="Say {name} and {{literal}} and %(x)s as written.")
    assert "Say {name} and {{literal}} and %(x)s as written." in build_system_prompt(target, [target])


def test_the_prompt_names_the_agent_its_role_and_its_personality() -> None:
    prompt = build_system_prompt(CRITIC, TRIO)
    assert prompt.startswith("You are Ada, one of several AI agents")
    for text in ("Critic", "Finds the weak spots", "point out flaws", "Sceptic", "Ask for evidence", "never by name"):
        assert text in prompt


def test_other_enabled_participants_are_listed_by_name_and_role_name_in_display_order() -> None:
    prompt = build_system_prompt(CRITIC, [POET, SLEEPER, CRITIC, RESEARCHER])
    assert "- Bob (Researcher)\n- Cy (Poet)" in prompt
    assert "Dee" not in prompt and "Disabled role" not in prompt
    assert "- Ada (" not in prompt
    assert "Digs up facts" not in prompt  # other agents' role descriptions are not shared


def test_an_agent_alone_is_told_it_is_the_only_one() -> None:
    solo = agent("ca-solo", "Solo")
    prompt = build_system_prompt(solo, [solo, SLEEPER])
    assert prompt.startswith("You are Solo, an AI agent in a chat with a user.")
    assert "You are the only agent in this conversation" in prompt


def test_the_prompt_explains_the_conversation_format_and_forbids_the_own_name_prefix() -> None:
    prompt = build_system_prompt(CRITIC, TRIO)
    assert "Messages from the user appear as they are" in prompt
    assert 'for example "Bob: I agree with that."' in prompt
    assert 'Do not start it with "Ada:"' in prompt


def test_the_prompt_does_not_depend_on_participant_or_trait_order() -> None:
    shuffled_traits = dict(reversed(list(CRITIC.personality.behaviors.items())))
    reordered = agent(
        "ca-ada",
        "Ada",
        role=CRITIC.role,
        personality=PersonalityRecord("p-sceptic", "Sceptic", shuffled_traits, CRITIC.personality.custom_instructions),
        personality_behaviors=CRITIC.personality_behaviors,
        system_prompt=CRITIC.system_prompt,
    )
    assert build_system_prompt(reordered, list(reversed(TRIO))) == build_system_prompt(CRITIC, TRIO)


@pytest.mark.parametrize(
    ("value", "band"),
    [(0, "very low"), (20, "very low"), (21, "low"), (40, "low"), (41, "balanced"), (50, "balanced")]
    + [(60, "balanced"), (61, "high"), (80, "high"), (81, "very high"), (100, "very high")],
)
def test_values_fall_into_five_bands(value: int, band: str) -> None:
    assert trait_band(value) == band


@pytest.mark.parametrize(
    ("trait", "value", "expected"),
    [
        ("brevity", 90, "- Brevity (very high, 90/100): Be concise: prefer short answers"),
        ("brevity", 65, "- Brevity (high, 65/100): Be concise"),
        ("brevity", 5, "- Brevity (very low, 5/100): Take room to elaborate"),
        ("brevity", 50, "- Brevity (balanced, 50/100): Say what is needed"),
        ("agreeableness", 30, "- Agreeableness (low, 30/100): Be blunt and challenging"),
        ("neuroticism", 10, "- Emotional sensitivity (very low, 10/100): Stay calm"),
        ("humor", 85, "- Humour (very high, 85/100): Be playful"),
        ("focus", 90, "- Focus (very high, 90/100): Stay tightly on topic"),
        ("randomness", 0, "- Spontaneity (very low, 0/100): Be predictable"),
        ("responseLength", 100, "- Response length (very high, 100/100): Give long, detailed replies"),
        ("senseOfWonder", 85, "- Sense of wonder: 85/100 (very high)."),
        ("team_spirit", 35, "- Team spirit: 35/100 (low)."),
    ],
)
def test_traits_are_worded_by_band(trait: str, value: int, expected: str) -> None:
    assert describe_trait(trait, value).startswith(expected)


def test_every_known_trait_has_distinct_wording_for_low_balanced_and_high() -> None:
    for trait in KNOWN_TRAITS:
        lines = {describe_trait(trait, v).split(": ", 1)[1] for v in (10, 50, 90)}
        assert len(lines) == 3, trait


def test_every_behaviour_trait_of_the_personality_is_rendered() -> None:
    prompt = build_system_prompt(ALL_TRAITS, [ALL_TRAITS])
    for trait, value in ALL_TRAITS.personality.behaviors.items():
        assert describe_trait(trait, value) in prompt


@pytest.mark.parametrize(
    ("behaviors", "overrides", "expected"),
    [
        ({"humor": 40}, None, {"humor": 40}),
        ({"humor": 40}, {"humor": 30}, {"humor": 70}),
        ({"humor": 40}, {"humor": -100}, {"humor": 0}),
        ({"humor": 90}, {"humor": 50}, {"humor": 100}),
        ({}, {"empathy": 25}, {"empathy": 75}),
        ({}, {"empathy": -80}, {"empathy": 0}),
        ({"a": 10, "b": 20}, {"b": 5}, {"a": 10, "b": 25}),
    ],
)
def test_effective_traits_add_overrides_clamp_and_start_missing_ones_at_50(
    behaviors: dict[str, int], overrides: dict[str, int] | None, expected: dict[str, int]
) -> None:
    target = agent("ca", "A", personality=PersonalityRecord("p", "P", behaviors), personality_behaviors=overrides)
    assert effective_behaviors(target) == expected


def test_overrides_reach_the_prompt() -> None:
    prompt = build_system_prompt(CRITIC, TRIO)
    assert "Assertiveness (very high, 90/100)" in prompt
    assert "Humour (very low, 0/100)" in prompt
    assert "Curiosity (high, 80/100)" in prompt


@pytest.mark.parametrize(
    ("trait", "words"),
    [
        ("responseLength", "Response length"),
        ("sense_of_wonder", "Sense of wonder"),
        ("dryWit", "Dry wit"),
        ("x", "X"),
        ("HTMLSkill", "Htmlskill"),
    ],
)
def test_unknown_trait_names_are_humanised(trait: str, words: str) -> None:
    assert humanise_trait(trait) == words
