"""Params, results and notifications checked against schema/ (the only reader of the contract's JSON files)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from functools import cache
from importlib.resources import files
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator

from sidecar.errors import InvalidParams

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}
_WORDED_KEYWORDS = frozenset({"pattern", "anyOf", "oneOf", "not"})


def validate_params(method: str, params: object) -> dict[str, Any]:
    """Check a request's params against its method; return them as a dict or raise InvalidParams.

    Omitted params (`None`) count as `{}`. An unknown method raises KeyError: dispatch checks
    method existence first, so reaching here with one is a bug.
    """
    validator, empty_ok = _params_validator(method)
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidParams("params", "params must be an object")
    if not params and empty_ok:
        return params  # `ping`, the `:list`s: the empty object's verdict is known, skip the schema walk
    error = next(validator.iter_errors(params), None)
    if error is not None:
        raise _invalid_params(error)
    return params


def validate_result(method: str, result: object) -> None:
    """Raise jsonschema.ValidationError unless `result` is what `method` promises (KeyError: no such request)."""
    _result_validator(method).validate(result)


def validate_notification(method: str, params: object) -> None:
    """Raise jsonschema.ValidationError unless `params` fit the server notification `method` (KeyError: unknown)."""
    _notification_validator(method).validate(params)


def check_component(name: str, value: object) -> tuple[str, str] | None:
    """The first way `value` breaks `components.schemas[name]` of openrpc.json, as (field, reason) with `field` the
    dotted path inside `value` ("" for the value itself); None when it fits. For documents that are not params
    (an imported conversation file)."""
    error = next(_component_validator(name).iter_errors(value), None)
    if error is None:
        return None
    invalid = _invalid_params(error)
    field = invalid.extra["field"]
    return ("" if field == "params" else field), invalid.extra["reason"]


def method_names() -> frozenset[str]:
    """Every method in openrpc.json, the client's notifications (`exit`, `$/cancelRequest`) included."""
    return frozenset(_methods())


# Each validator is compiled on its method's first use, once per process: a start-up that only answers
# `initialize` compiles one schema, not all ~50. `$ref`s are inlined at compile time: resolving them on
# every call costs ~30x the check.


@cache
def _openrpc() -> dict[str, Any]:
    return _load("openrpc.json")


@cache
def _methods() -> dict[str, dict[str, Any]]:
    return {method["name"]: method for method in _openrpc()["methods"]}


@cache
def _params_validator(method: str) -> tuple[Validator, bool]:
    """The method's params validator, and whether it accepts `{}` (methods whose params are all optional)."""
    validator = _compile(_params_schema(_methods()[method]), _openrpc())
    return validator, validator.is_valid({})


@cache
def _result_validator(method: str) -> Validator:
    return _compile(_methods()[method]["result"]["schema"], _openrpc())


@cache
def _component_validator(name: str) -> Validator:
    return _compile(_openrpc()["components"]["schemas"][name], _openrpc())


@cache
def _notifications() -> dict[str, Any]:
    return _load("notifications.json")


@cache
def _notification_validator(method: str) -> Validator:
    document = _notifications()
    return _compile(document["x-methods"][method], document)


def _load(name: str) -> dict[str, Any]:
    return json.loads(files("schema").joinpath(name).read_text(encoding="utf-8"))


def _compile(schema: dict[str, Any], document: dict[str, Any]) -> Validator:
    return _Validator(_inline_refs(schema, document))


def _params_schema(method: dict[str, Any]) -> dict[str, Any]:
    """One object schema from a method's ContentDescriptors, plus its `x-paramsRules` (cross-field rules)."""
    schema: dict[str, Any] = {
        "type": "object",
        "required": [p["name"] for p in method["params"] if p.get("required")],
        "properties": {p["name"]: p["schema"] for p in method["params"]},
        "additionalProperties": False,
    }
    if method.get("x-paramsRules"):
        schema["allOf"] = method["x-paramsRules"]
    return schema


def _inline_refs(node: Any, document: dict[str, Any]) -> Any:
    """Copy `node` with every document-local `$ref` ("#/a/b") replaced by its target (the schemas are not recursive)."""
    if isinstance(node, list):
        return [_inline_refs(item, document) for item in node]
    if not isinstance(node, dict):
        return node
    rest = {key: _inline_refs(value, document) for key, value in node.items() if key != "$ref"}
    if "$ref" not in node:
        return rest
    target = document
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    target = _inline_refs(target, document)
    return {"allOf": [target], **rest} if rest else target


# --- our dialect: strict integers, finite numbers, ECMA-style `$`, and a UTF-8 size cap -------------------------


def _is_integer(checker: object, instance: object) -> bool:
    # 1.0 is an integer to JSON Schema, but a handler would then store a float; JS never sends it.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(checker: object, instance: object) -> bool:
    # Python's json accepts NaN and Infinity, which pass every minimum/maximum check.
    return _is_integer(checker, instance) or (isinstance(instance, float) and math.isfinite(instance))


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    # In Python `$` also matches before a final "\n"; in JSON Schema (ECMA-262) it does not.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(validator: Validator, pattern: str, instance: object, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if isinstance(instance, str) and not _regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _max_utf8_bytes(
    validator: Validator, limit: int, instance: object, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    # A code point is at most 4 bytes, so short strings skip the encode.
    if not isinstance(instance, str) or len(instance) * 4 <= limit:
        return
    if len(instance) > limit or len(instance.encode("utf-8", "surrogatepass")) > limit:
        yield ValidationError(f"must be at most {_byte_size(limit)} of UTF-8")


_Validator = validators.extend(
    Draft202012Validator,
    validators={"pattern": _pattern, "x-maxUtf8Bytes": _max_utf8_bytes},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many({"integer": _is_integer, "number": _is_number}),
)


# --- a jsonschema error -> InvalidParams(field, reason) ----------------------------------------------------------


def _invalid_params(error: ValidationError) -> InvalidParams:
    if error.validator == "anyOf" and "x-reason" not in error.schema:
        return _invalid_any_of(error)
    path = [str(part) for part in error.absolute_path]
    schema = error.schema if isinstance(error.schema, dict) else {}
    keyword = error.validator
    # x-field / x-reason word the keywords whose default wording would be unreadable (see schema/README.md).
    worded = keyword in _WORDED_KEYWORDS
    if worded and "x-field" in schema:
        path.append(schema["x-field"])
    elif keyword == "required":
        path.append(next(name for name in error.validator_value if name not in error.instance))
    elif keyword == "additionalProperties":
        known = schema.get("properties", {})
        path.append(next(name for name in error.instance if name not in known))
    elif "propertyNames" in error.absolute_schema_path:
        path.append(str(error.instance))  # the offending key itself
    reason = schema["x-reason"] if worded and "x-reason" in schema else _reason(error, schema)
    return InvalidParams(".".join(path) or "params", reason)


def _invalid_any_of(error: ValidationError) -> InvalidParams:
    """Report the branch the value was meant for (its type matched), else the types it could have had."""
    near_misses = [sub for sub in error.context if sub.validator != "type" or sub.absolute_path != error.absolute_path]
    if near_misses:
        return _invalid_params(near_misses[0])
    types = [name for sub in error.context for name in _as_list(sub.validator_value)]
    field = ".".join(str(part) for part in error.absolute_path) or "params"
    return InvalidParams(field, _must_be(types))


def _reason(error: ValidationError, schema: dict[str, Any]) -> str:
    keyword, value = error.validator, error.validator_value
    if keyword == "required":
        return "is required"
    if keyword == "additionalProperties":
        return "is not allowed"
    if keyword == "type":
        return _must_be(_as_list(value))
    if keyword == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters"
    if keyword == "maxLength":
        return f"must be at most {value} characters"
    if keyword in ("minimum", "maximum"):
        if "minimum" in schema and "maximum" in schema:
            return f"must be between {schema['minimum']} and {schema['maximum']}"
        return f"must be at {'least' if keyword == 'minimum' else 'most'} {value}"
    if keyword == "enum":
        return "must be one of: " + ", ".join(str(option) for option in value)
    if keyword == "const":
        return f"must be {json.dumps(value)}"
    if keyword == "maxProperties":
        return f"must have at most {value} entries"
    if keyword == "pattern":
        return f"must match the pattern {value}"
    if keyword == "x-maxUtf8Bytes":
        return error.message
    return "is not valid"


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _must_be(types: list[str]) -> str:
    return "must be " + " or ".join(_TYPE_WORDS[name] for name in dict.fromkeys(types))


def _byte_size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit % 2**20 == 0 else f"{limit} bytes"
