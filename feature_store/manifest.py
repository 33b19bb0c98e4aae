"""`manifest.json`: what a snapshot version is, and the sha256 of every file it holds.

The format is specified in docs/snapshot_format.md; `from_json` refuses anything else with
`SnapshotCorruptError`, so a reader never acts on a manifest it does not fully understand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from feature_store.errors import SnapshotCorruptError

FORMAT_VERSION = 1


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_str_map(value: Any, check: Callable[[Any], bool]) -> bool:
    return isinstance(value, dict) and all(_is_str(k) and check(v) for k, v in value.items())


def _is_sha256(value: Any) -> bool:
    return _is_str(value) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


# JSON key -> check; the dataclass field is named the same except "lambda" -> `lam`.
_SCHEMA: dict[str, Callable[[Any], bool]] = {
    "format_version": _is_int,
    "model": _is_str,
    "version": lambda v: _is_int(v) and v >= 1,
    "dim": lambda v: _is_int(v) and v >= 1,
    "kind": lambda v: _is_str(v) and v != "",
    "lambda": lambda v: _is_float(v) and v > 0,
    "noise_std": lambda v: _is_float(v) and v >= 0,
    "created_at": _is_str,
    "training_cutoff": lambda v: v is None or _is_str(v),
    "metrics": lambda v: _is_str_map(v, _is_float),
    "parent": lambda v: v is None or (_is_int(v) and v >= 1),
    "files": lambda v: _is_str_map(v, _is_sha256),
    "prior_mean": lambda v: isinstance(v, list) and all(_is_float(x) for x in v),
    "extra": lambda v: isinstance(v, dict) and all(_is_str(k) for k in v),
}


@dataclass(frozen=True)
class Manifest:
    """The metadata of one snapshot version; `lam` is stored under the JSON key "lambda"."""

    format_version: int
    model: str
    version: int
    dim: int
    kind: str
    lam: float
    noise_std: float
    created_at: str
    training_cutoff: str | None
    metrics: dict[str, float]
    parent: int | None
    files: dict[str, str]
    prior_mean: list[float]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this manifest, keys in the spec's order."""
        return {key: getattr(self, "lam" if key == "lambda" else key) for key in _SCHEMA}

    def to_json(self) -> str:
        """Serialize as indented JSON (NaN is never written: the fields are checked finite)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        """Build from a parsed JSON object, refusing any missing, unknown or ill-typed key."""
        if not isinstance(data, dict):
            raise SnapshotCorruptError("manifest is not a JSON object")
        if data.get("format_version") != FORMAT_VERSION:
            raise SnapshotCorruptError(
                f"unknown manifest format_version {data.get('format_version')!r} "
                f"(this reader understands {FORMAT_VERSION})"
            )
        missing = sorted(set(_SCHEMA) - set(data))
        unknown = sorted(set(data) - set(_SCHEMA))
        if missing or unknown:
            raise SnapshotCorruptError(f"manifest keys missing {missing}, unknown {unknown}")
        bad = [key for key, check in _SCHEMA.items() if not check(data[key])]
        if bad:
            raise SnapshotCorruptError(f"manifest has invalid values for {bad}")
        if len(data["prior_mean"]) != data["dim"]:
            raise SnapshotCorruptError(
                f"manifest prior_mean has {len(data['prior_mean'])} values, dim is {data['dim']}"
            )
        values = {("lam" if key == "lambda" else key): data[key] for key in _SCHEMA}
        values["metrics"] = {k: float(v) for k, v in values["metrics"].items()}
        values["prior_mean"] = [float(x) for x in values["prior_mean"]]
        values["lam"] = float(values["lam"])
        values["noise_std"] = float(values["noise_std"])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        """Parse `manifest.json` text; anything unreadable raises `SnapshotCorruptError`."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as error:
            raise SnapshotCorruptError(f"manifest is not valid JSON: {error}") from error
        return cls.from_dict(data)
