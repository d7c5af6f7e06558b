"""What storage refuses to do, and why, in storage's own words (like `sqlite3`'s `IntegrityError` family).

    StorageError          base: a safe message plus extra data fields (id, field, ...); never raised itself
    ├── InvalidValue      a value the schema let through but storage cannot keep (field, reason)
    ├── RowNotFound       the row (or a row it refers to) does not exist
    ├── RowConflict       a duplicate, or a row still in use by others
    ├── RuleBroken        a rule no schema expresses (whitespace-only content, control characters)
    ├── RowBusy           the row is still being written (a reply `streaming`): try again once it settles
    └── FeatureMissing    this SQLite lacks what the request needs (FTS5 for messages:search)

Repositories raise them where the problem is first understood; the layer above gives them their wire
meaning in one table (`sidecar.errors.from_storage_error`). Messages and data must be safe to show: ids and
wire field names, never row contents or secrets.
"""

from __future__ import annotations

from typing import Any


class StorageError(Exception):
    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = data  # wire names (id, field, ...), passed on to the client as they are


class InvalidValue(StorageError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}", field=field, reason=reason)
        self.field = field
        self.reason = reason


class RowNotFound(StorageError):
    pass


class RowConflict(StorageError):
    pass


class RuleBroken(StorageError):
    pass


class RowBusy(StorageError):
    pass


class FeatureMissing(StorageError):
    pass
