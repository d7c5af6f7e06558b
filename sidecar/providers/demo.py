"""The offline demo provider: a deterministic reply from the agent's name, role and the last user message.

Models: ``demo`` (about 30 ms a word), ``demo-slow`` (about 300 ms a word), ``demo-skip`` (always answers
``SKIP``), ``demo-error-<errorType>`` (fails as that error type after about 200 ms, retryable as the contract's
table says). Any other model is a ``configuration`` error. It quotes the last *user* message (never another
agent's reply), addresses with ``@Name`` an agent that the answered message named, and in an auto run answers
``SKIP`` once it has spoken twice in that run (the body's ``scene``). Usage is estimated in words: input = the
words of the system prompt and every message, output = the words of the reply.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from typing import Any

import anyio

from sidecar.providers.base import ERROR_TYPES, ProviderError, ProviderSettings, StreamEnd, Usage
from sidecar.providers.errors import classify_sdk_error
from sidecar.providers.spec import ProviderSpec, RequestParts

SECONDS_PER_WORD = {"demo": 0.03, "demo-slow": 0.3, "demo-skip": 0.03}
SKIP_MODEL = "demo-skip"  # always answers SKIP
SPEAKS_PER_RUN = 2
ERROR_DELAY_S = 0.2
ERROR_PREFIX = "demo-error-"
MIN_WORDS, MAX_WORDS = 20, 40
_QUOTE_WORDS = 12

_CLOSINGS = (
    "From where I stand, the next step is to pin down what success looks like and test it early.",
    "My suggestion is to start small, check the result, and then decide together how far to take it.",
    "I would weigh the trade-offs first, because the simplest option is often the one that lasts.",
    "Let me add that a quick example usually settles more than a long debate does.",
    "I am curious what the others think, since a second view tends to catch what one misses.",
)
_PADDING = "This is an offline demo reply, so no real model was called.".split()


def demo_reply(agent_name: str, role: str, last_user_message: str | None) -> str:
    """The reply text: 20–40 words, the same for the same inputs."""
    quoted = " ".join((last_user_message or "").split()[:_QUOTE_WORDS])
    words = f"{agent_name or 'Agent'} here, speaking as {'the ' + role if role else 'a participant'}.".split()
    words += (f'You said: "{quoted}".' if quoted else "Nobody has said anything yet.").split()
    # crc32, not hash(): the choice must not change between runs.
    pick = zlib.crc32(f"{agent_name}|{role}|{last_user_message}".encode()) % len(_CLOSINGS)
    words += _CLOSINGS[pick].split()
    while len(words) < MIN_WORDS:
        words += _PADDING
    return " ".join(words[:MAX_WORDS])


class DemoProvider:
    """Streams `demo_reply` word by word; ``time_scale`` shortens every delay (tests use a small one)."""

    def __init__(self, time_scale: float = 1.0) -> None:
        self._time_scale = time_scale

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[str | StreamEnd]:
        model = str(body.get("model", ""))
        if model.startswith(ERROR_PREFIX):
            await anyio.sleep(ERROR_DELAY_S * self._time_scale)
            error_type = next((t for t in ERROR_TYPES if model == ERROR_PREFIX + t), "configuration")
            raise ProviderError(error_type)
        delay = SECONDS_PER_WORD.get(model)
        if delay is None:
            raise ProviderError("configuration")
        agent = body.get("agent") or {}
        messages = body.get("messages") or []
        scene = body.get("scene") or {}
        if model == SKIP_MODEL or scene.get("spokenInRun", 0) >= SPEAKS_PER_RUN:
            reply = "SKIP"  # in an auto run, twice is enough: demo runs end with every agent skipping
        else:
            last_user = scene["lastUserMessage"] if "lastUserMessage" in scene else _last_user_text(messages)
            reply = demo_reply(str(agent.get("name", "")), str(agent.get("role", "")), last_user)
            if scene.get("address"):
                reply = f"@{scene['address']}, {reply}"
        for i, word in enumerate(reply.split(" ")):
            await anyio.sleep(delay * self._time_scale)
            yield word if i == 0 else f" {word}"
        usage = Usage(input_tokens=_count_words(body.get("system"), messages), output_tokens=len(reply.split()))
        yield StreamEnd(usage, "end")

    async def list_models(self) -> list[str]:
        """Its own models, without any network (the error models are for tests, not for choosing)."""
        return list(SECONDS_PER_WORD)

    async def aclose(self) -> None:
        return None


def _last_user_text(messages: list[dict[str, Any]]) -> str | None:
    return next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), None)


def _count_words(system: Any, messages: list[dict[str, Any]]) -> int:
    texts = [str(system or ""), *(str(m.get("content", "")) for m in messages)]
    return sum(len(t.split()) for t in texts)


def open_demo(settings: ProviderSettings) -> DemoProvider:
    return DemoProvider()


def classify_error(exc: BaseException) -> ProviderError:
    return classify_sdk_error(exc, None)


def build_body(parts: RequestParts) -> dict[str, Any]:
    """Not a real API: the agent's name and role and the scene travel in the body; an empty history stays empty."""
    agent = {"name": parts.agent_name, "role": parts.agent_role}
    body = {"model": parts.model, "agent": agent, "system": parts.system_prompt, "messages": parts.turns}
    if parts.scene is not None:
        body["scene"] = parts.scene
    return body


SPEC = ProviderSpec(
    name="demo",
    sdk_module=None,
    uses_api_key=False,
    build_body=build_body,
    open=open_demo,
    classify_error=classify_error,
    requires_a_turn=False,
)
