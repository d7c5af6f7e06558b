"""The method table and schema/openrpc.json name the same methods (as httpx guards its `__all__`), and every handler
is a coroutine function taking `(services, params)`.
"""

from __future__ import annotations

import inspect
import json
import re
from importlib.resources import files
from typing import Any

import pytest

from sidecar.methods.table import METHODS
from sidecar.validation import method_names

HANDLED_BY_DISPATCH = frozenset({"$/cancelRequest"})  # dispatch answers it itself: it needs the in-flight table
OPENRPC: dict[str, Any] = json.loads(files("schema").joinpath("openrpc.json").read_text(encoding="utf-8"))
DOCUMENTED = [method["name"] for method in OPENRPC["methods"]]
BARE_NAMES = frozenset({"initialize", "ping", "shutdown", "exit", "processUserMessage", "buildAgentContext"})


def test_the_table_and_the_openrpc_document_name_the_same_methods() -> None:
    registered = set(METHODS) | HANDLED_BY_DISPATCH
    assert sorted(registered - set(DOCUMENTED)) == [], "registered but missing from schema/openrpc.json"
    assert sorted(set(DOCUMENTED) - registered) == [], "documented in schema/openrpc.json but has no handler"


def test_validation_knows_exactly_the_documented_methods() -> None:
    assert method_names() == frozenset(DOCUMENTED)


def test_no_method_is_documented_twice() -> None:
    assert len(DOCUMENTED) == len(set(DOCUMENTED))


def test_the_methods_dispatch_handles_itself_are_not_in_the_table() -> None:
    assert HANDLED_BY_DISPATCH.isdisjoint(METHODS)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_handler_is_an_async_def_taking_services_and_params(name: str) -> None:
    handler = METHODS[name]
    assert inspect.iscoroutinefunction(handler), f"{name} must be an async def"
    assert len(inspect.signature(handler).parameters) == 2, f"{name} must take (services, params)"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_names_mirror_ipc_channels(name: str) -> None:
    assert name in BARE_NAMES or re.fullmatch(r"[a-z][A-Za-z]*:[a-z][A-Za-z]*", name), name
