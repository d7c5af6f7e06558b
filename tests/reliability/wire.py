"""Helpers the reliability tests share: reading every frame back off stdout, snapshots of the data, RSS, canaries."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from tests.sidecar_client import Sidecar

LIST_METHODS = ("llmConfigs:list", "roles:list", "personalities:list", "agents:list", "conversations:list")


def parse_stdout(data: bytes, framing: str = "ndjson") -> list[Any]:
    """Every message the sidecar wrote, in order; raises if a frame is torn or not JSON."""
    messages: list[Any] = []
    if framing == "ndjson":
        for line in data.split(b"\n"):
            if line.strip():
                messages.append(json.loads(line.decode("utf-8")))
        return messages
    rest = data
    while rest:
        end = rest.index(b"\r\n\r\n")
        length = int(rest[:end].split(b":", 1)[1])
        messages.append(json.loads(rest[end + 4 : end + 4 + length].decode("utf-8")))
        rest = rest[end + 4 + length :]
    return messages


def responses_by_id(messages: list[Any]) -> Counter[Any]:
    """How many responses each id got (batch answers flattened; notifications skipped)."""
    counts: Counter[Any] = Counter()
    for message in messages:
        for item in message if isinstance(message, list) else [message]:
            if isinstance(item, dict) and "method" not in item:
                counts[json.dumps(item.get("id"))] += 1
    return counts


def is_valid_response(item: Any) -> bool:
    """A JSON-RPC 2.0 response: `jsonrpc`, an id, and exactly one of a result or a well-formed error."""
    if not isinstance(item, dict) or item.get("jsonrpc") != "2.0" or "id" not in item:
        return False
    if ("result" in item) == ("error" in item):
        return False
    if "error" in item:
        error = item["error"]
        return isinstance(error, dict) and isinstance(error.get("code"), int) and isinstance(error.get("message"), str)
    return True


def snapshot(sidecar: Sidecar) -> dict[str, Any]:
    """Every row the data API can list: the five lists, and each conversation's agents and messages."""
    state: dict[str, Any] = {method: sidecar.call(method) for method in LIST_METHODS}
    for conversation in state["conversations:list"]:
        cid = conversation["id"]
        state[f"agents of {cid}"] = sidecar.call("conversationAgents:list", {"conversationId": cid})
        state[f"messages of {cid}"] = sidecar.call("messages:list", {"conversationId": cid})
    return state


def known_ids(state: dict[str, Any]) -> list[str]:
    return sorted({row["id"] for rows in state.values() for row in rows if isinstance(row, dict) and "id" in row})


def rss_kib(pid: int) -> int:
    """Resident set size of a live process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def stderr_records(sidecar: Sidecar) -> list[dict[str, Any]]:
    """The sidecar's JSON log lines (every stderr line must be one)."""
    return [json.loads(line) for line in sidecar.stderr_lines if line.strip()]


def leak_forms(secret: str) -> list[bytes]:
    """The ways a secret could show up in bytes: as is, JSON-escaped, and in UTF-16 (SQLite text)."""
    forms = {secret.encode(), json.dumps(secret)[1:-1].encode(), secret.encode("utf-16-le")}
    return sorted(forms)
