"""The agents the interleaving tests use, what each can do, and how a fresh data dir is set up through the wire.

Fake-provider agents run through the real OpenAI and Anthropic SDKs against tests/fake_provider.py; demo agents
through the built-in demo provider. Three never finish on their own (LONG): the machine cancels them before it
waits for a quiet session. In an auto run (CONTRACT §5b) Skipper always skips, Pointer names Quick (who then speaks
next), and Demo skips once it has spoken twice in the run, so runs end every way: all skipped, at maxMessages, at a
failure, or cancelled.
"""

from __future__ import annotations

from typing import Any

from tests.fake_provider import FakeProvider
from tests.stdio.chat_setup import API_KEY

# name → (llm config, model, how it behaves)
CAST: dict[str, tuple[str, str, str]] = {
    "Quick": ("openai", "gpt-words-8-pace-5", "eight words at once"),
    "Paced": ("anthropic", "claude-words-40-pace-10", "forty words over ~0.4 s"),
    "Demo": ("demo", "demo", "20-40 words, ~30 ms each"),
    "Cut": ("anthropic", "claude-words-30-pace-10-reset", "a dropped stream after two words: error, text kept"),
    "Refused": ("openai", "gpt-err-401", "401 at once: error, not retried"),
    "Limited": ("demo", "demo-error-rate_limit", "rate_limit, retried twice (~2 s), then error"),
    "Endless": ("openai", "gpt-words-100000-pace-20", "streams until cancelled"),
    "Mute": ("anthropic", "claude-hang", "thinking until cancelled or its timeouts run out (~10 s)"),
    "Slow": ("demo", "demo-slow", "~300 ms a word: 6-12 s"),
    "Skipper": ("openai", "gpt-skip", "answers SKIP: skipped in an auto run, a reply 'SKIP' elsewhere"),
    "Pointer": ("anthropic", "claude-words-6-pace-5-mention-Quick", "'@Quick' and six words: Quick speaks next"),
}
NAMES = sorted(CAST)
LONG = frozenset({"Endless", "Mute", "Slow"})  # the machine cancels these before waiting for quiet
# Conversations are drawn from these: agents that finish by themselves twice as often as the others, Skipper three
# times (auto runs where everyone skips need rooms of skippers; it answers at once).
WEIGHTED_NAMES = sorted([*NAMES, *(set(NAMES) - LONG), "Skipper"])
STREAMERS = frozenset({"Quick", "Paced", "Demo", "Cut", "Endless", "Slow", "Pointer"})
FAILERS = frozenset({"Cut", "Refused", "Limited"})
RETRIERS = frozenset({"Limited"})
NEVER_STREAMS_ALONE = frozenset({"Mute"})  # thinking forever: an action waiting for text would wait for ever


def create_configs(call: Any, fake: FakeProvider) -> dict[str, str]:
    """The fake OpenAI and Anthropic configs (with a key) and the seeded demo config: provider → id."""
    configs = {"demo": next(c["id"] for c in call("llmConfigs:list") if c["provider"] == "demo")}
    for provider, base_url in (("openai", fake.openai_base_url), ("anthropic", fake.anthropic_base_url)):
        row = call("llmConfigs:create", {"customName": f"fake {provider}", "provider": provider, "baseUrl": base_url,
                                         "apiKey": API_KEY})
        configs[provider] = row["id"]
    return configs


def create_agents(call: Any, configs: dict[str, str]) -> dict[str, str]:
    """One agent per cast member: name → agent id."""
    role, personality = call("roles:list")[0]["id"], call("personalities:list")[0]["id"]
    return {
        name: call("agents:create", {"name": name, "llmConfigId": configs[provider], "model": model, "roleId": role,
                                     "personalityId": personality, **TIMEOUTS.get(name, {})})["id"]
        for name, (provider, model, _) in CAST.items()
    }


# Mute gives up after its attempts (3 × 3 s + backoff) instead of never: an agent queued behind it on a config
# limited to one call (the "limit concurrency" action) would otherwise wait forever for its slot.
TIMEOUTS: dict[str, dict[str, int]] = {"Mute": {"timeoutMs": 3000}}


def restore_keys(call: Any, configs: dict[str, str]) -> None:
    """The memory secret store forgets keys with the process: give them back after a restart."""
    for provider, config_id in configs.items():
        if provider != "demo":
            call("llmConfigs:setApiKey", {"id": config_id, "apiKey": API_KEY, "persist": False})
