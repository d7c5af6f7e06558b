"""Role, personality and participants → the system prompt one agent sees (plain string building)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from storage.records import ParticipantRecord

# A personality without a trait that an agent override names starts that trait from the middle.
NEUTRAL_TRAIT_VALUE = 50

# Known traits in the order they are rendered: (label, low-side wording, balanced wording, high-side wording).
_TRAIT_WORDING: dict[str, tuple[str, str, str, str]] = {
    "openness": (
        "Openness",
        "Stick to the familiar and proven; be sceptical of novel or unconventional ideas.",
        "Weigh new ideas against proven ones on their merits.",
        "Be open to new ideas: explore unconventional angles, imaginative possibilities and abstract thinking.",
    ),
    "conscientiousness": (
        "Conscientiousness",
        "Be relaxed and spontaneous; do not fuss over structure or detail.",
        "Be reasonably careful and organised without being rigid.",
        "Be thorough and careful: check details, keep things organised and follow through on every point.",
    ),
    "extraversion": (
        "Extraversion",
        "Be reserved and understated; speak when you have something to add.",
        "Be friendly and engaged without dominating the conversation.",
        "Be outgoing and energetic: engage warmly and enthusiastically with everyone.",
    ),
    "agreeableness": (
        "Agreeableness",
        "Be blunt and challenging: question claims and disagree openly when you see things differently.",
        "Be cooperative, but disagree when you have good reason to.",
        "Be cooperative and accommodating: look for common ground and build on what others say.",
    ),
    "neuroticism": (
        "Emotional sensitivity",
        "Stay calm and even-tempered, even when the conversation gets tense.",
        "Show ordinary emotional reactions, neither unflappable nor anxious.",
        "Let worries and strong feelings show: point out risks and what could go wrong.",
    ),
    "formality": (
        "Formality",
        "Write casually, as you would talk to a friend.",
        "Use a neutral, conversational but polite register.",
        "Write formally and professionally: precise wording, no slang.",
    ),
    "humor": (
        "Humour",
        "Stay serious; avoid jokes and wordplay.",
        "Use a light touch of humour when it fits.",
        "Be playful: bring in wit, jokes and wordplay where they fit.",
    ),
    "brevity": (
        "Brevity",
        "Take room to elaborate: explain your reasoning and give examples.",
        "Say what is needed, without padding and without cutting corners.",
        "Be concise: prefer short answers and cut every word that does not earn its place.",
    ),
    "assertiveness": (
        "Assertiveness",
        "Be tentative: offer suggestions rather than firm positions, and defer to others.",
        "State your views plainly while staying open to other views.",
        "Be assertive: take clear positions, state them with confidence and defend them.",
    ),
    "empathy": (
        "Empathy",
        "Focus on facts and reasoning rather than feelings.",
        "Acknowledge feelings where it matters, but keep to the substance.",
        "Be empathetic: notice how others feel and respond with warmth and understanding.",
    ),
    "curiosity": (
        "Curiosity",
        "Answer what is asked without probing further.",
        "Ask a follow-up question when something is genuinely unclear.",
        "Be curious: ask questions, dig into why and explore related ideas.",
    ),
    "responseLength": (
        "Response length",
        "Keep replies short: a few sentences at most.",
        "Give replies of moderate length.",
        "Give long, detailed replies that cover the subject fully.",
    ),
    "randomness": (
        "Spontaneity",
        "Be predictable and consistent: go with the most expected answer.",
        "Balance expected answers with the occasional fresh idea.",
        "Be inventive and unpredictable: try surprising ideas and phrasings.",
    ),
    "focus": (
        "Focus",
        "Feel free to wander into related tangents.",
        "Stay mostly on topic, with the odd relevant aside.",
        "Stay tightly on topic: no tangents or digressions.",
    ),
}
KNOWN_TRAITS: tuple[str, ...] = tuple(_TRAIT_WORDING)

# (upper bound inclusive, band label); the wording index is 0 = low side, 1 = balanced, 2 = high side.
_BANDS: tuple[tuple[int, str, int], ...] = (
    (20, "very low", 0),
    (40, "low", 0),
    (60, "balanced", 1),
    (80, "high", 2),
    (100, "very high", 2),
)


def effective_behaviors(target: ParticipantRecord) -> dict[str, int]:
    """The personality's traits with the agent's overrides added, each clamped to 0..100."""
    values = dict(target.personality.behaviors)
    for trait, delta in (target.personality_behaviors or {}).items():
        values[trait] = values.get(trait, NEUTRAL_TRAIT_VALUE) + delta
    return {trait: min(100, max(0, value)) for trait, value in values.items()}


def trait_band(value: int) -> str:
    """The band label for a 0..100 trait value."""
    return next(label for upper, label, _ in _BANDS if value <= upper)


def humanise_trait(trait: str) -> str:
    """`responseLength` or `sense_of_wonder` → `Response length`, `Sense of wonder`."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", trait).replace("_", " ").replace("-", " ").split()
    text = " ".join(words).lower()
    return text[:1].upper() + text[1:] if text else trait


def describe_trait(trait: str, value: int) -> str:
    """One bullet line of plain wording for a trait at an (effective) value."""
    band = trait_band(value)
    wording = _TRAIT_WORDING.get(trait)
    if wording is None:
        return f"- {humanise_trait(trait)}: {value}/100 ({band})."
    index = next(i for upper, _, i in _BANDS if value <= upper)
    return f"- {wording[0]} ({band}, {value}/100): {wording[1 + index]}"


def describe_traits(behaviors: Mapping[str, int]) -> list[str]:
    """Known traits in their fixed order, then unknown ones alphabetically."""
    known = [t for t in KNOWN_TRAITS if t in behaviors]
    unknown = sorted(t for t in behaviors if t not in _TRAIT_WORDING)
    return [describe_trait(t, behaviors[t]) for t in known + unknown]


def build_system_prompt(
    target: ParticipantRecord, participants: list[ParticipantRecord], auto_mode: bool = False
) -> str:
    """The whole system prompt for `target`, sections separated by blank lines; in an auto run it also explains
    the conversation the agents keep going on their own."""
    others = _other_participants(target, participants)
    sections = [
        _identity_section(target, others),
        _role_section(target),
        _personality_section(target),
        _agent_instructions_section(target),
        _participants_section(others),
        _format_section(target, others),
        _auto_mode_section(target, others) if auto_mode else "",
    ]
    return "\n\n".join(section for section in sections if section)


def _other_participants(target: ParticipantRecord, participants: list[ParticipantRecord]) -> list[ParticipantRecord]:
    others = [p for p in participants if p.enabled and p.conversation_agent_id != target.conversation_agent_id]
    return sorted(others, key=lambda p: (p.display_order, p.agent_name, p.conversation_agent_id))


def _identity_section(target: ParticipantRecord, others: list[ParticipantRecord]) -> str:
    setting = "one of several AI agents taking part in a group chat" if others else "an AI agent in a chat"
    return f"You are {target.agent_name}, {setting} with a user. Stay in character as described below."


def _role_section(target: ParticipantRecord) -> str:
    role = target.role
    lines = [f"Your role: {role.name}"]
    if role.description.strip():
        lines.append(role.description.strip())
    lines.append(role.system_prompt.strip())
    return "\n".join(line for line in lines if line)


def _personality_section(target: ParticipantRecord) -> str:
    personality = target.personality
    lines = [f"Your personality: {personality.name}"]
    if personality.custom_instructions.strip():
        lines.append(personality.custom_instructions.strip())
    traits = describe_traits(effective_behaviors(target))
    if traits:
        lines.append("Your behaviour traits (each on a scale of 0 to 100):")
        lines.extend(traits)
    return "\n".join(lines)


def _agent_instructions_section(target: ParticipantRecord) -> str:
    own = (target.system_prompt or "").strip()
    return f"Further instructions for you:\n{own}" if own else ""


def _participants_section(others: list[ParticipantRecord]) -> str:
    if not others:
        return "You are the only agent in this conversation: it is just you and the user."
    lines = ["The other agents in this conversation:"]
    lines.extend(f"- {p.agent_name} ({p.role.name})" for p in others)
    return "\n".join(lines)


def _format_section(target: ParticipantRecord, others: list[ParticipantRecord]) -> str:
    # The example uses a real participant's name: a made-up one could read as another agent.
    example = f', for example "{others[0].agent_name}: I agree with that."' if others else "."
    return "\n".join(
        [
            "How the conversation is shown to you:",
            "- Messages from the user appear as they are, with no name in front.",
            "- Messages from other agents appear as user messages that start with the agent's name and a colon"
            + example,
            "- Your own earlier replies appear as your own (assistant) messages.",
            f'Write only your own reply. Do not start it with "{target.agent_name}:" or any other name, '
            "and do not write messages for the user or the other agents.",
        ]
    )


def _auto_mode_section(target: ParticipantRecord, others: list[ParticipantRecord]) -> str:
    """Auto mode (CONTRACT §5b): the agents take turns on their own until nobody has anything to add."""
    address = f'"@{others[0].agent_name}"' if others else '"@Name"'
    lines = [
        "This conversation is running in auto mode: the agents take turns speaking without waiting for the user.",
        f"- To address another participant directly, write @ and their name, for example {address}; "
        "that agent speaks next.",
        "- When you have nothing useful to add, answer with exactly SKIP and nothing else; "
        "when every agent skips, the conversation pauses for the user.",
        f"- Speak only as {target.agent_name}: never write lines for the user or the other agents.",
    ]
    return "\n".join(lines)
