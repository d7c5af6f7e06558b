"""Errors a client can see, each with its JSON-RPC code and `data.kind`.

    SidecarError                      base: code, message, data
    ├── InvalidParams     -32602      data = {field, reason}
    ├── NotFound          -32010      kind not_found
    ├── Conflict          -32011      kind conflict
    ├── RuleViolation     -32012      kind validation (rules a schema cannot express)
    ├── SecretStorageError -32013     kind secret_storage
    ├── Busy              -32014      kind busy
    ├── Unavailable       -32015      kind unavailable (a feature this system's SQLite lacks: FTS5 search)
    ├── ShuttingDown      -32014      kind shutting_down
    └── RequestCancelled  -32800      ($/cancelRequest)

Raise them where a problem is first understood; `sidecar.dispatch` turns them into responses.
Messages must be safe to show: never a key, a raw provider body or exception text.

Storage raises its own errors (`storage.errors`); `from_storage_error` gives them their wire meaning, in one table:

    InvalidValue  -> InvalidParams     RowNotFound    -> NotFound
    RowConflict   -> Conflict          RuleBroken     -> RuleViolation
    RowBusy       -> Busy              FeatureMissing -> Unavailable
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from storage.errors import (
    FeatureMissing,
    InvalidValue,
    RowBusy,
    RowConflict,
    RowNotFound,
    RuleBroken,
    StorageError,
)


class SidecarError(Exception):
    code: int = -32603
    kind: str | None = None

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = data

    @property
    def data(self) -> dict[str, Any]:
        if self.kind is None:
            return dict(self.extra)
        return {"kind": self.kind, **self.extra}


class InvalidParams(SidecarError):
    code = -32602

    def __init__(self, field: str, reason: str) -> None:
        super().__init__("Invalid params", field=field, reason=reason)


class NotFound(SidecarError):
    code = -32010
    kind = "not_found"


class Conflict(SidecarError):
    code = -32011
    kind = "conflict"


class RuleViolation(SidecarError):
    code = -32012
    kind = "validation"


class SecretStorageError(SidecarError):
    code = -32013
    kind = "secret_storage"


class Busy(SidecarError):
    code = -32014
    kind = "busy"


class Unavailable(SidecarError):
    code = -32015
    kind = "unavailable"


class ShuttingDown(SidecarError):
    code = -32014
    kind = "shutting_down"


class RequestCancelled(SidecarError):
    code = -32800


# Storage's meaning -> the wire's. Looked up along the exception's MRO, so a subclass inherits its parent's entry.
_FROM_STORAGE: dict[type[StorageError], Callable[[Any], SidecarError]] = {
    InvalidValue: lambda exc: InvalidParams(exc.field, exc.reason),
    RowNotFound: lambda exc: NotFound(exc.message, **exc.extra),
    RowConflict: lambda exc: Conflict(exc.message, **exc.extra),
    RuleBroken: lambda exc: RuleViolation(exc.message, **exc.extra),
    RowBusy: lambda exc: Busy(exc.message, **exc.extra),
    FeatureMissing: lambda exc: Unavailable(exc.message, **exc.extra),
}


def from_storage_error(exc: StorageError) -> SidecarError:
    """The client-facing error for what storage refused: same message, same data fields."""
    for cls in type(exc).__mro__:
        to_wire = _FROM_STORAGE.get(cls)
        if to_wire is not None:
            return to_wire(exc)
    raise TypeError(f"no wire meaning for {type(exc).__name__}")  # a new storage error must get a row above
