"""Hypothesis strategies for JSON-RPC params, read from schema/openrpc.json: valid-ish values and hostile ones."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

OPENRPC = Path(__file__).parents[2] / "schema" / "openrpc.json"
ID_REF = "#/components/schemas/Id"
# Methods a fuzzer must not call: they end the session (exit, shutdown) by design.
SESSION_ENDERS = frozenset({"shutdown", "exit"})
# Never given a real conversation id, so no fuzzed turn ever calls a provider (a random base URL could hang it).
TURN_METHODS = frozenset({"processUserMessage", "chat:retryAgent"})
READ_ONLY = frozenset({"initialize", "ping", "buildAgentContext", "$/cancelRequest"})

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
NASTY_STRINGS = st.sampled_from(
    ["", " ", "\t\n", "\x00", "a\x00b", "\ud800", "x\udfffy", "\u2028\u2029", "\ufeff", "\x7f\x85", "é" * 101,
     "${jndi}", "{{name}}", "'; DROP TABLE messages; --", "../../etc/passwd", "null", "-1", "1e309"]
)


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


HOSTILE = st.one_of(
    JSON_VALUES,
    NASTY_STRINGS,
    st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=30),
    st.sampled_from([2**31, 2**53 + 1, 2**63, -(2**63) - 1, 10**400, -0.0, 1e308, 5e-324]),
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: x != x or abs(x) == float("inf")),
    st.integers(min_value=1, max_value=70).map(_nested),
    st.integers(min_value=1000, max_value=300_000).map(lambda n: "x" * n),
)


@cache
def document() -> dict[str, Any]:
    return json.loads(OPENRPC.read_text(encoding="utf-8"))


def methods() -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in document()["methods"] if m["name"] not in SESSION_ENDERS}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = {**document()["components"]["schemas"][name], **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def valid_ish(schema: dict[str, Any], ids: list[str]) -> st.SearchStrategy[Any]:
    """Values shaped like `schema` (ids drawn from `ids` or made up); not guaranteed valid, usually close."""
    if schema.get("$ref") == ID_REF:
        # An index, not sampled_from(ids): the pool changes between examples, the choices hypothesis makes must not.
        known = st.integers(min_value=0, max_value=2**16).map(lambda i: ids[i % len(ids)] if ids else "no-rows-yet")
        return known | st.uuids().map(str) | st.text(min_size=1, max_size=12)
    schema = _resolve(schema)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([valid_ish(option, ids) for option in schema[key]])
    types = schema.get("type")
    if isinstance(types, list):
        return st.one_of([valid_ish({**schema, "type": t}, ids) for t in types])
    return _by_type(types, schema, ids)


def _by_type(kind: Any, schema: dict[str, Any], ids: list[str]) -> st.SearchStrategy[Any]:
    if kind == "string":
        low, high = schema.get("minLength", 0), min(schema.get("maxLength", 60), 60)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: low <= len(s) <= high + 40)
        return st.text(min_size=low, max_size=max(low, high))
    if kind == "integer":
        return st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "object":
        return _object(schema, ids)
    if kind == "array":
        return st.lists(valid_ish(schema.get("items", {}), ids), max_size=4)
    return JSON_VALUES


def _object(schema: dict[str, Any], ids: list[str]) -> st.SearchStrategy[Any]:
    properties = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: valid_ish(v, ids) for k, v in properties.items() if k in required},
            optional={k: valid_ish(v, ids) for k, v in properties.items() if k not in required},
        )
    names = valid_ish(schema.get("propertyNames", {"type": "string"}), ids)
    values = schema.get("additionalProperties")
    return st.dictionaries(names, valid_ish(values, ids) if isinstance(values, dict) else JSON_VALUES, max_size=5)


@st.composite
def params_for(draw: st.DrawFn, method: dict[str, Any], ids: list[str]) -> Any:
    """A params value for `method`: schema-shaped, with one field made hostile, or structurally wrong."""
    descriptors = method["params"]
    pool = [] if method["name"] in TURN_METHODS else ids
    params: dict[str, Any] = {}
    for descriptor in descriptors:
        if descriptor.get("required") or draw(st.booleans()):
            params[descriptor["name"]] = draw(valid_ish(descriptor["schema"], pool))
    if method["name"] == "initialize":
        params.pop("processId", None)  # a made-up pid is a dead parent: the sidecar would rightly exit
    mode = draw(st.sampled_from(["valid-ish", "hostile field", "extra field", "missing field", "not an object"]))
    if mode == "hostile field" and descriptors:
        name = draw(st.sampled_from([d["name"] for d in descriptors if d["name"] != "processId"] or ["x"]))
        params[name] = draw(HOSTILE)
    elif mode == "extra field":
        params[draw(st.text(min_size=1, max_size=10))] = draw(JSON_VALUES)
    elif mode == "missing field" and params:
        del params[draw(st.sampled_from(sorted(params)))]
    elif mode == "not an object":
        return draw(st.one_of(st.lists(JSON_SCALARS, max_size=3), JSON_SCALARS))
    return params
