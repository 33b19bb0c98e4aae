"""Which users a score table holds, in user_id order, and the weights each is scored with.

`--users all` takes every user of the snapshot's users.arrow; `active:DAYS` the users with an
event in the drained feedback log (`<home>/events/<model>/`) in the last DAYS days; a PATH is
a text file of user ids, one a line. A user the snapshot does not know is scored with the
population prior, as `/predict` scores such a user.

Weights are the snapshot's (`weights: "snapshot"` in the manifest): `users.arrow`'s w is each
user's posterior mean at the snapshot's training cutoff, and materialization runs right after
the retrain that drained the log into that training. Feedback that arrives later shows through
`/recommendations?fresh=true`, which re-ranks with the posterior in Redis; reading Redis here
would tie a batch job to the service's key layout (online/redis_keys.py) for little gain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from batch.materialize.errors import UserSelectionError
from feature_store.arrow_tables import read_factors

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ALL = "all"
ACTIVE_PREFIX = "active:"


@dataclass(frozen=True)
class UsersSpec:
    """A parsed `--users` value: `all`, `active` with a number of days, or a file of ids."""

    kind: str
    days: float = 0.0
    path: Path | None = None

    @classmethod
    def parse(cls, text: str) -> UsersSpec:
        """Parse `all`, `active:DAYS` or a path; `ValueError` with a one-line message if bad."""
        if text == ALL:
            return cls("all")
        if text.startswith(ACTIVE_PREFIX):
            try:
                days = float(text.removeprefix(ACTIVE_PREFIX))
            except ValueError:
                days = -1.0
            if not days > 0 or not np.isfinite(days):
                raise ValueError(f"--users {text!r}: DAYS must be a number > 0")
            return cls("active", days=days)
        return cls("path", path=Path(text))


@dataclass(frozen=True)
class SelectedUsers:
    """The users to score, sorted by user_id, with their float64 weights (m, d)."""

    ids: pa.Array
    weights: NDArray[np.float64]
    known: int

    def table(self) -> pa.Table:
        """As an Arrow table: `user_id` string, `w` fixed_size_list<float64, d>."""
        dim = self.weights.shape[1]
        flat = pa.array(np.ascontiguousarray(self.weights).reshape(-1), pa.float64())
        return pa.table({"user_id": self.ids, "w": pa.FixedSizeListArray.from_arrays(flat, dim)})

    @classmethod
    def from_table(cls, table: pa.Table | pa.RecordBatch) -> SelectedUsers:
        """Read back what `table` wrote (all users counted as known)."""
        w = table.column("w")
        dim = w.type.list_size
        values = pa.concat_arrays(w.chunks) if isinstance(w, pa.ChunkedArray) else w
        flat = values.flatten().to_numpy(zero_copy_only=False)
        ids = table.column("user_id")
        ids = pa.concat_arrays(ids.chunks) if isinstance(ids, pa.ChunkedArray) else ids
        return cls(ids, flat.reshape(-1, dim), len(ids))


def select_users(
    ids: list[str] | None, users: pa.RecordBatch, prior_mean: NDArray[np.float64], dim: int
) -> SelectedUsers:
    """The users named by `ids` (None: every snapshot user), sorted, with their weights."""
    snapshot_ids = users.column("user_id")
    batch_w = read_factors(users, "w", dim, "user")
    if ids is None:
        order = pc.sort_indices(snapshot_ids).to_numpy()
        weights = batch_w[order].astype(np.float64)
        return SelectedUsers(snapshot_ids.take(order), weights, len(order))
    chosen = pc.unique(pa.array(ids, pa.string()))
    chosen = chosen.take(pc.sort_indices(chosen))
    rows = pc.index_in(chosen, value_set=snapshot_ids).to_numpy(zero_copy_only=False)
    known = ~np.isnan(rows.astype(np.float64))
    weights = np.tile(np.asarray(prior_mean, np.float64), (len(chosen), 1))
    weights[known] = batch_w[rows[known].astype(np.int64)]
    return SelectedUsers(chosen, weights, int(known.sum()))


def read_user_file(path: Path) -> list[str]:
    """User ids from a text file, one a line (blank lines skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UserSelectionError(f"--users {path}: cannot read the file: {error}") from error
    ids = [line.strip() for line in lines if line.strip()]
    if not ids:
        raise UserSelectionError(f"--users {path}: the file names no users")
    return ids


def active_user_ids(
    spark: SparkSession, log_root: Path, days: float, now: datetime | None = None
) -> list[str]:
    """Users with an event in the drained feedback log under `log_root` in the last `days`."""
    from pyspark.sql import functions as sf

    files = sorted(log_root.glob("date=*/*.parquet"))
    if not files:
        raise UserSelectionError(f"--users active: no drained feedback log under {log_root}")
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    frame = spark.read.parquet(str(log_root)).where(sf.col("timestamp") >= sf.lit(since))
    ids = [row.user_id for row in frame.select("user_id").distinct().collect()]
    if not ids:
        raise UserSelectionError(f"--users active:{days:g}: nobody was active in {log_root}")
    return ids
