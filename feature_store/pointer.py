"""The `CURRENT` pointer of a model: the version being served and the ones served before.

`history` is a stack of the versions that were current before, oldest first: promote
pushes the old current, rollback pops it back. The file is only ever replaced whole and
atomically (spec: docs/snapshot_format.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from feature_store.errors import NoRollbackTargetError, SnapshotCorruptError

POINTER_FORMAT = 1


def utc_now() -> str:
    """The current time as ISO-8601 UTC with milliseconds, e.g. `2026-01-02T03:04:05.678Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_version(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class CurrentPointer:
    """What `CURRENT` holds."""

    version: int
    history: tuple[int, ...] = ()
    updated_at: str = ""

    def promoted(self, version: int) -> CurrentPointer:
        """The pointer after making `version` current (the old current goes on the stack)."""
        return CurrentPointer(version, (*self.history, self.version), utc_now())

    def rolled_back(self) -> CurrentPointer:
        """The pointer after going back to the previous current version."""
        if not self.history:
            raise NoRollbackTargetError(
                f"v{self.version} is current and no version was current before it"
            )
        return CurrentPointer(self.history[-1], self.history[:-1], utc_now())

    def to_json(self) -> bytes:
        """The file's bytes."""
        data = {
            "format_version": POINTER_FORMAT,
            "current": self.version,
            "history": list(self.history),
            "updated_at": self.updated_at,
        }
        return (json.dumps(data, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes) -> CurrentPointer:
        """Parse the file; anything unexpected raises `SnapshotCorruptError`."""
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise SnapshotCorruptError(f"CURRENT is not valid JSON: {error}") from error
        if (
            not isinstance(data, dict)
            or data.get("format_version") != POINTER_FORMAT
            or not _is_version(data.get("current"))
            or not isinstance(data.get("history"), list)
            or not all(_is_version(v) for v in data["history"])
            or not isinstance(data.get("updated_at"), str)
        ):
            raise SnapshotCorruptError(f"CURRENT has an unexpected content: {raw[:200]!r}")
        return cls(data["current"], tuple(data["history"]), data["updated_at"])


def first_pointer(version: int) -> CurrentPointer:
    """The pointer of a model whose first current version is `version`."""
    return CurrentPointer(version, (), utc_now())
