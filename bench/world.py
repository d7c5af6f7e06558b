"""Set-up through the sidecar's own methods: llm configs on the fake server, agents, conversations, turns."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench.fake import FakeServer
from bench.proc import API_KEY, Proc


@dataclass
class Room:
    conversation_id: str
    members: list[dict[str, Any]]  # conversationAgents rows, in order
    models: dict[str, str] = field(default_factory=dict)  # conversationAgentId → model


class World:
    def __init__(self, proc: Proc, fake: FakeServer) -> None:
        self.proc = proc
        self.fake = fake
        self._configs = 0
        self._agents = 0
        self.role = proc.call("roles:list")[0]["id"]
        self.personality = proc.call("personalities:list")[0]["id"]

    def config(self, provider: str = "openai") -> str:
        self._configs += 1
        base = self.fake.openai_base_url if provider == "openai" else self.fake.anthropic_base_url
        params = {"customName": f"bench {provider} {self._configs}", "provider": provider, "baseUrl": base,
                  "apiKey": API_KEY}
        return str(self.proc.call("llmConfigs:create", params)["id"])

    def agent(self, config_id: str, model: str) -> str:
        self._agents += 1
        params = {"name": f"Agent{self._agents}", "llmConfigId": config_id, "model": model, "roleId": self.role,
                  "personalityId": self.personality}
        return str(self.proc.call("agents:create", params)["id"])

    def room(self, specs: list[tuple[str, str]], title: str = "bench") -> Room:
        """A conversation with one agent per (config id, model)."""
        conversation = self.proc.call("conversations:create", {"title": title})["id"]
        members, models = [], {}
        for config_id, model in specs:
            row = self.proc.call("conversationAgents:add", {"conversationId": conversation,
                                                            "agentId": self.agent(config_id, model)})
            members.append(row)
            models[row["id"]] = model
        return Room(conversation, members, models)

    def turn(self, room: Room, content: str = "Hello everyone, what do you think?") -> tuple[float, float, Any]:
        """One processUserMessage: (written at, answered at, result)."""
        request_id, sent = self.proc.request("processUserMessage", {"conversationId": room.conversation_id,
                                                                     "content": content})
        answered, response = self.proc.response(request_id)
        if "error" in response:
            raise RuntimeError(f"turn failed: {response['error']}")
        result = response["result"]
        if result["successfulAgents"] != result["totalAgents"]:
            raise RuntimeError(f"an agent failed: {result['agentResults']}")
        return sent, answered, result

    def forget_turn(self, result: dict[str, Any]) -> None:
        """Delete a turn's rows, so the next one sees the same history."""
        ids = [r["messageId"] for r in result["agentResults"] if r.get("messageId")] + [result["userMessageId"]]
        for message_id in ids:
            self.proc.call("messages:delete", {"id": message_id})


def now() -> float:
    return time.monotonic()
