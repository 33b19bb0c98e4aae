"""`TowerSpec`: what the item tower needs to turn an item's attributes into its inputs.

Stored beside the tower's weights as `tower.json` in a `kind = deep` snapshot. Columns:

- `categorical`: a string or list<string> column with a vocabulary; each known value is one
  token of the item's token bag (unknown values are ignored, as an item without them).
- `text`: a string column whose words are hashed into `text_buckets` shared buckets.
- `numeric`: an int or float column, standardized by the training mean and std; a missing
  value is 0 with a missing flag.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from feature_store.errors import SnapshotCorruptError

SPEC_FORMAT = 1
MAX_TEXT_CHARS = 1000
MAX_LIST_VALUES = 64


@dataclass(frozen=True)
class Categorical:
    """A vocabulary column; `is_list` for list<string>, else a plain string."""

    values: list[str]
    is_list: bool


@dataclass(frozen=True)
class Numeric:
    """A numeric column and its standardization."""

    mean: float
    std: float


def _matrix(value: Any) -> list[list[float]] | None:
    if value is None:
        return None
    rows = [[float(x) for x in row] for row in value]
    if len({len(row) for row in rows}) != 1 or len(rows) != len(rows[0]):
        raise ValueError("feature_transform must be a square matrix")
    return rows


def _calibration(value: Any) -> list[list[float]] | None:
    if value is None:
        return None
    rows = [[float(x) for x in row] for row in value]
    if not all(math.isfinite(x) for row in rows for x in row):
        raise ValueError("unseen_calibration must be finite")
    return rows


def _buckets(value: Any) -> list[int] | None:
    if value is None:
        return None
    return sorted({int(x) for x in value})


@dataclass(frozen=True)
class TowerSpec:
    """Inputs and sizes of an item tower (the JSON of `tower.json`).

    `out_dim` is k, the width of each learned block; with `block_scales` [1, s] (explicit
    feedback) the tower has a rating block z and an exposure block y and the published features
    are `[z, s * y, global_mean + bias, 1]` (d = 2k + 2; s gives y the mean norm of z, as ALS
    scales its exposure block), with [1] (implicit) `[z, global_mean + bias, 1]` (d = k + 2).
    `id_rows` is the id table's size: the published tower keeps only row 0, the embedding of
    an item the tower never saw. `feature_transform` (d x d, optional) is the change of basis
    the published features went through (the exposure prior's, `batch.train_als`): a tower
    feature row f is published as `T @ f`. `unseen_calibration` (optional; m + 1 rows of m, m =
    k * blocks + 1 the tower's raw output width: a matrix A, then a shift t) maps the raw output
    o of an item on the unseen id row (every item the published tower featurizes) to `A o + t`,
    so that content-only outputs have the id path's spread (batch/deep/calibration.py).
    `text_kept` (optional) lists the word buckets the tower reads: words of other buckets (too
    rare among the training items to carry more than an item's identity) are ignored, as
    unknown categorical values are.
    """

    embed_dim: int
    hidden: int
    out_dim: int
    global_mean: float
    text_buckets: int
    max_text_tokens: int
    categorical: dict[str, Categorical] = field(default_factory=dict)
    text: list[str] = field(default_factory=list)
    numeric: dict[str, Numeric] = field(default_factory=dict)
    id_rows: int = 1
    block_scales: list[float] = field(default_factory=lambda: [1.0])
    feature_transform: list[list[float]] | None = None
    unseen_calibration: list[list[float]] | None = None
    text_kept: list[int] | None = None
    format: int = SPEC_FORMAT

    @property
    def columns(self) -> list[str]:
        """Every attribute column the tower reads."""
        return [*self.categorical, *self.text, *self.numeric]

    @property
    def n_tokens(self) -> int:
        """Size of the categorical token table (row 0 is padding)."""
        return 1 + sum(len(column.values) for column in self.categorical.values())

    @property
    def dim(self) -> int:
        """The feature dimension d the tower's features have."""
        return self.blocks * self.out_dim + 2

    @property
    def blocks(self) -> int:
        """Learned feature blocks: 1 (rating or preference), 2 (rating and exposure)."""
        return len(self.block_scales)

    def token_offsets(self) -> dict[str, int]:
        """First token row of each categorical column."""
        offsets, start = {}, 1
        for name, column in self.categorical.items():
            offsets[name] = start
            start += len(column.values)
        return offsets

    def to_json(self) -> str:
        """The spec as JSON text (finite numbers only)."""
        return json.dumps(asdict(self), indent=1, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> TowerSpec:
        """Parse `tower.json`; anything malformed raises `SnapshotCorruptError`."""
        try:
            data: Any = json.loads(text)
            if data.get("format") != SPEC_FORMAT:
                raise ValueError(f"unknown tower spec format {data.get('format')!r}")
            spec = cls(
                embed_dim=int(data["embed_dim"]),
                hidden=int(data["hidden"]),
                out_dim=int(data["out_dim"]),
                global_mean=float(data["global_mean"]),
                text_buckets=int(data["text_buckets"]),
                max_text_tokens=int(data["max_text_tokens"]),
                categorical={
                    str(k): Categorical([str(v) for v in c["values"]], bool(c["is_list"]))
                    for k, c in data["categorical"].items()
                },
                text=[str(name) for name in data["text"]],
                numeric={
                    str(k): Numeric(float(n["mean"]), float(n["std"]))
                    for k, n in data["numeric"].items()
                },
                id_rows=int(data["id_rows"]),
                block_scales=[float(x) for x in data["block_scales"]],
                feature_transform=_matrix(data.get("feature_transform")),
                unseen_calibration=_calibration(data.get("unseen_calibration")),
                text_kept=_buckets(data.get("text_kept")),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise SnapshotCorruptError(f"tower spec is not valid: {error}") from error
        width, calibration = spec.blocks * spec.out_dim + 1, spec.unseen_calibration
        if calibration is not None and (
            len(calibration) != width + 1 or any(len(row) != width for row in calibration)
        ):
            raise SnapshotCorruptError("tower spec's unseen_calibration does not fit its output")
        bad_numbers = [n for n in spec.numeric.values() if not (math.isfinite(n.std) and n.std > 0)]
        scales = spec.block_scales
        sizes = (spec.embed_dim, spec.hidden, spec.out_dim, spec.text_buckets, len(scales))
        if bad_numbers or min(sizes) < 1 or not all(math.isfinite(x) for x in scales):
            raise SnapshotCorruptError("tower spec has non-positive sizes or scales")
        return spec
