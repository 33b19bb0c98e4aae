"""`manifest.json` of a score table version (spec: docs/score_tables.md).

`from_json` refuses anything unexpected with `ScoreTableCorruptError`, so the query side never
serves a table it does not fully understand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from feature_store.manifest import _is_int, _is_sha256, _is_str
from feature_store.score_tables.columns import filter_kinds
from feature_store.score_tables.errors import ScoreTableCorruptError
from feature_store.score_tables.layout import KEY_COLUMNS, parse_part_name

TABLE_FORMAT_VERSION = 1
Weights = Literal["snapshot", "posterior"]


@dataclass(frozen=True)
class PartFile:
    """One part file as the manifest lists it."""

    sha256: str
    rows: int


def _count(value: Any) -> bool:
    return _is_int(value) and value >= 0


def _positive(value: Any) -> bool:
    return _is_int(value) and value >= 1


def _is_part(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"sha256", "rows"}
        and (_is_sha256(value["sha256"]) and _count(value["rows"]))
    )


_SCHEMA: dict[str, Callable[[Any], bool]] = {
    "format_version": lambda v: v == TABLE_FORMAT_VERSION,
    "model": _is_str,
    "snapshot_version": _positive,
    "table_version": _positive,
    "top_n": lambda v: v is None or _positive(v),
    "users": _count,
    "items": _count,
    "rows": _count,
    "created_at": _is_str,
    "weights": lambda v: v in ("snapshot", "posterior"),
    "columns": lambda v: (
        isinstance(v, dict) and all(_is_str(k) and _is_str(t) for k, t in v.items())
    ),
    "files": lambda v: (
        isinstance(v, dict)
        and all(parse_part_name(k) is not None and _is_part(p) for k, p in v.items())
    ),
}


@dataclass(frozen=True)
class TableManifest:
    """What one score table version is: its origin, counts, columns and every file's sha256."""

    format_version: int
    model: str
    snapshot_version: int
    table_version: int
    top_n: int | None
    users: int
    items: int
    rows: int
    created_at: str
    weights: Weights
    columns: dict[str, str]
    files: dict[str, PartFile]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this manifest, keys in the spec's order."""
        return asdict(self)

    def to_json(self) -> str:
        """The file's text: indented JSON, keys in the spec's order."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def is_complete_for(self, matched: int, k: int) -> bool:
        """Whether `matched` rows of a user's top-N answer a top-`k` exactly.

        They do when there are k of them, or when the table holds every item for each user.
        """
        return matched >= k or self.top_n is None or self.top_n >= self.items

    @classmethod
    def from_dict(cls, data: Any) -> TableManifest:
        """Build from parsed JSON, refusing any missing, unknown or ill-typed key."""
        if not isinstance(data, dict):
            raise ScoreTableCorruptError("score table manifest is not a JSON object")
        missing = sorted(set(_SCHEMA) - set(data))
        unknown = sorted(set(data) - set(_SCHEMA))
        if missing or unknown:
            raise ScoreTableCorruptError(
                f"score table manifest keys missing {missing}, unknown {unknown}"
            )
        bad = [key for key, check in _SCHEMA.items() if not check(data[key])]
        if bad:
            raise ScoreTableCorruptError(f"score table manifest has invalid values for {bad}")
        manifest = cls(**{**data, "files": {k: PartFile(**p) for k, p in data["files"].items()}})
        manifest.validate()
        return manifest

    @classmethod
    def from_json(cls, text: str | bytes) -> TableManifest:
        """Parse `manifest.json`; anything unreadable raises `ScoreTableCorruptError`."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as error:
            raise ScoreTableCorruptError(f"score table manifest is not JSON: {error}") from error
        return cls.from_dict(data)

    def validate(self) -> None:
        """Check what relates fields to each other: row totals, column names and types."""
        if sum(part.rows for part in self.files.values()) != self.rows:
            raise ScoreTableCorruptError(
                f"score table {self.model} {self.table_version}: parts hold "
                f"{sum(p.rows for p in self.files.values())} rows, the manifest says {self.rows}"
            )
        clash = sorted(set(self.columns) & {*KEY_COLUMNS, "item"})
        if clash:
            raise ScoreTableCorruptError(f"score table attribute columns {clash} are reserved")
        filter_kinds(self.columns)
