"""`chat-sidecar demo`: spawn a sidecar as Electron would, seat three agents, and show them answer in parallel.

Offline on the `demo` provider by default; with OPENAI_API_KEY / ANTHROPIC_API_KEY set, agents use the
real providers (models from DEMO_OPENAI_MODEL / DEMO_ANTHROPIC_MODEL).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from typing import Any

from sidecar.client import SidecarClient

FIRST_MESSAGE = "What is the most underrated idea in software engineering?"
SECOND_MESSAGE = "Reply to one another: where do you agree, and where not?"
SEATS = [("Ada", "Domain Expert"), ("Blaise", "Devil's Advocate"), ("Cleo", "Summarizer")]


@dataclass
class AgentLine:
    name: str
    status: str = "waiting"
    text: str = ""
    error: str = ""


@dataclass
class TurnView:
    """The live view of one turn: one line per agent, redrawn in place on a terminal."""

    agents: dict[str, AgentLine] = field(default_factory=dict)
    live: bool = sys.stdout.isatty()
    _drawn: int = 0

    def update(self, event: dict[str, Any]) -> None:
        line = self.agents.setdefault(event["conversationAgentId"], AgentLine(event["agentName"]))
        line.status = event["status"]
        line.text += event.get("delta", "")
        line.error = event.get("error", line.error)
        if self.live:
            self._redraw()
        elif event["status"] in ("thinking", "retrying", "complete", "error", "cancelled"):
            print(f"  [{line.name}] {event['status']}", flush=True)

    def _redraw(self) -> None:
        width = max(shutil.get_terminal_size().columns - 24, 20)
        if self._drawn:
            sys.stdout.write(f"\x1b[{self._drawn}F")
        for line in self.agents.values():
            tail = line.text.replace("\n", " ")[-width:]
            sys.stdout.write(f"\x1b[2K  {line.name:<8} {line.status:<10} {tail}\n")
        self._drawn = len(self.agents)
        sys.stdout.flush()

    def print_replies(self) -> None:
        for line in self.agents.values():
            body = line.text or line.error or "(no text)"
            print(f"\n{line.name} ({line.status}):")
            print(textwrap.indent(textwrap.fill(body, 96), "    "))


def run_demo(args: argparse.Namespace) -> int:
    data_dir = str(args.data_dir) if args.data_dir else tempfile.mkdtemp(prefix="chat-sidecar-demo-")
    client = SidecarClient(["--data-dir", data_dir, "--secret-store", "memory", "--log-level", "warning"])
    try:
        info = client.call("initialize", {"clientInfo": {"name": "chat-sidecar demo"}, "processId": os.getpid()})
        print(f"sidecar {info['serverInfo']['version']} ready, data in {info['dataDir']}")
        conversation_id = _seat_agents(client)
        if getattr(args, "mode", "manual") == "auto":
            client.call("conversations:update", {"id": conversation_id, "chatMode": "auto"})
            _run_auto(client, conversation_id, args.message or FIRST_MESSAGE)
        else:
            for message in (args.message or FIRST_MESSAGE, SECOND_MESSAGE):
                _run_turn(client, conversation_id, message)
        client.call("shutdown")
        client.notify("exit")
        return client.close()
    except BaseException:
        client.proc.kill()
        raise


def _seat_agents(client: SidecarClient) -> str:
    providers = _providers(client)
    roles = {role["name"]: role["id"] for role in client.call("roles:list")}
    personalities = client.call("personalities:list")
    conversation = client.call("conversations:create", {"title": "Demo"})
    for index, (name, role_name) in enumerate(SEATS):
        config_id, model = providers[index % len(providers)]
        agent = client.call("agents:create", {
            "name": name, "llmConfigId": config_id, "model": model,
            "roleId": roles.get(role_name, next(iter(roles.values()))),
            "personalityId": personalities[index % len(personalities)]["id"],
        })
        client.call("conversationAgents:add", {"conversationId": conversation["id"], "agentId": agent["id"]})
        print(f"seated {name} ({role_name}) on {model}")
    return conversation["id"]


def _providers(client: SidecarClient) -> list[tuple[str, str]]:
    """(llm config id, model) pairs: the real providers whose keys are set, else the offline demo."""
    found = []
    for provider, env_key, model_env, model in (
        ("openai", "OPENAI_API_KEY", "DEMO_OPENAI_MODEL", "gpt-4.1-mini"),
        ("anthropic", "ANTHROPIC_API_KEY", "DEMO_ANTHROPIC_MODEL", "claude-haiku-4-5"),
    ):
        if os.environ.get(env_key):
            config = client.call("llmConfigs:create", {
                "customName": f"Demo {provider}", "provider": provider,
                "apiKey": os.environ[env_key], "persist": False,
            })
            found.append((config["id"], os.environ.get(model_env, model)))
    if not found:
        demo = next(c for c in client.call("llmConfigs:list") if c["provider"] == "demo")
        found.append((demo["id"], "demo"))
    return found


def _run_turn(client: SidecarClient, conversation_id: str, message: str) -> None:
    print(f"\nYou: {message}")
    answer = client.request_async("processUserMessage", {"conversationId": conversation_id, "content": message})
    view = TurnView()
    while True:
        event = client.notifications.get(timeout=300)
        if event["method"] == "all:complete":
            break
        view.update(event["params"])
    result = answer.get(timeout=60)["result"]
    view.print_replies()
    print(f"\n{result['successfulAgents']}/{result['totalAgents']} agents answered in {result['totalDurationMs']} ms")


def _run_auto(client: SidecarClient, conversation_id: str, message: str) -> None:
    """An auto run: the agents talk in turn until they have nothing to add; each reply is shown as it streams."""
    print(f"\nYou: {message}")
    answer = client.request_async("processUserMessage", {"conversationId": conversation_id, "content": message})
    while True:
        event = client.notifications.get(timeout=300)
        params = event["params"]
        if event["method"] == "all:complete":
            break
        if event["method"] == "auto:state":
            print(f"\n[auto mode {params['state']}{': ' + params['reason'] if params.get('reason') else ''}]")
            continue
        status = params["status"]
        if status == "thinking":
            print(f"\n{params['agentName']} (round {params.get('round', 1)}): ", end="", flush=True)
        elif status == "streaming":
            print(params["delta"], end="", flush=True)
        elif status == "skipped":
            print("(skips their turn)", flush=True)
        elif status in ("error", "cancelled"):
            print(f"[{status}] {params.get('error', '')}", flush=True)
        elif status == "complete":
            print(flush=True)
    auto = answer.get(timeout=60)["result"]["auto"]
    print(f"\n{auto['replies']} replies in {auto['rounds']} rounds; stopped: {auto['stopReason']}")
