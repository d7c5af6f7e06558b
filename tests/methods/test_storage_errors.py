"""Storage's own errors get their wire meaning in one table: the same code, kind, message and data as before."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.errors import SidecarError, from_storage_error
from storage import errors as storage_errors
from storage.errors import (
    FeatureMissing,
    InvalidValue,
    RowBusy,
    RowConflict,
    RowNotFound,
    RuleBroken,
    StorageError,
)


@pytest.mark.parametrize(
    ("raised", "code", "message", "data"),
    [
        (InvalidValue("content", "must be at most 8 MiB of UTF-8"), -32602, "Invalid params",
         {"field": "content", "reason": "must be at most 8 MiB of UTF-8"}),
        (RowNotFound("Agent not found", id="a1"), -32010, "Agent not found", {"kind": "not_found", "id": "a1"}),
        (RowNotFound("Message not found in this conversation", id="m9", field="before"), -32010,
         "Message not found in this conversation", {"kind": "not_found", "id": "m9", "field": "before"}),
        (RowConflict("This agent is already in the conversation", field="agentId"), -32011,
         "This agent is already in the conversation", {"kind": "conflict", "field": "agentId"}),
        (RuleBroken("Content must not be empty or only whitespace", field="content"), -32012,
         "Content must not be empty or only whitespace", {"kind": "validation", "field": "content"}),
        (RowBusy("The message is still being written", id="m1"), -32014, "The message is still being written",
         {"kind": "busy", "id": "m1"}),
        (FeatureMissing("Search is not available", feature="fts5"), -32015, "Search is not available",
         {"kind": "unavailable", "feature": "fts5"}),
    ],
)  # fmt: skip
def test_each_storage_error_becomes_the_wire_error_the_client_always_saw(
    raised: StorageError, code: int, message: str, data: dict[str, Any]
) -> None:
    error = from_storage_error(raised)
    assert (error.code, error.message, error.data) == (code, message, data)


def _all_subclasses(cls: type[StorageError]) -> list[type[StorageError]]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_all_subclasses(direct))]


def test_every_storage_error_class_has_a_wire_meaning() -> None:
    defined = [cls for cls in _all_subclasses(StorageError) if cls.__module__ == storage_errors.__name__]
    assert sorted(cls.__name__ for cls in defined) == [
        "FeatureMissing", "InvalidValue", "RowBusy", "RowConflict", "RowNotFound", "RuleBroken"
    ]  # fmt: skip
    for cls in defined:
        sample = cls("field", "reason") if cls is InvalidValue else cls("Something went wrong", id="x")
        assert isinstance(from_storage_error(sample), SidecarError)


def test_a_subclass_of_a_storage_error_keeps_its_parents_wire_meaning() -> None:
    class StillInUse(RowConflict):
        pass

    assert from_storage_error(StillInUse("In use", id="r1")).data == {"kind": "conflict", "id": "r1"}
