"""Errors a client can see, each with its JSON-RPC code and `data.kind`.

    SidecarError                      base: code, message, data
    ├── InvalidParams     -32602      data = {field, reason}
    ├── NotFound          -32010      kind not_found
    ├── Conflict          -32011      kind conflict
    ├── RuleViolation     -32012      kind validation (rules a schema cannot express)
    ├── SecretStorageError -32013     kind secret_storage
    ├── Busy              -32014      kind busy
    ├── ShuttingDown      -32014      kind shutting_down
    └── RequestCancelled  -32800      ($/cancelRequest)

Raise them where a problem is first understood; `sidecar.dispatch` turns them into responses.
Messages must be safe to show: never a key, a raw provider body or exception text.
"""

from __future__ import annotations

from typing import Any


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


class ShuttingDown(SidecarError):
    code = -32014
    kind = "shutting_down"


class RequestCancelled(SidecarError):
    code = -32800
