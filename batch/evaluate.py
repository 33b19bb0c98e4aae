"""Offline metrics of fitted user heads on held-out rows, per user, with bootstrap intervals.

Ranking: for every user with a relevant held-out event (reward above `relevant_above`: the
training mean for ratings, 0 for implicit feedback), the top-K of the candidate catalog by
score, the user's training items excluded; recall@K (hits / relevant), NDCG@K (binary gains)
and catalog coverage (share of the items in some top-K list). RMSE over the held-out rows.
Every metric is a mean over users (RMSE: of squared errors pooled over users), so its 95 %
interval comes from resampling users with replacement (`bootstrap`). The most-popular
baseline (items ranked by their number of training events) is scored on the same users with
the same exclusions (`popularity_scores`). The protocol that calls these is batch.protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf

from batch.prepare import ITEM, REWARD, USER
from batch.splits import TEST

_SCORE_USERS = 512  # users scored per matrix product
BOOTSTRAP_RESAMPLES = 1000
FloatArray = NDArray[np.float64]
TIME = "t"
"""Column of `rows_of`: the event time in unix microseconds."""


@dataclass(frozen=True)
class UserRanking:
    """Per evaluated user: recall@k and NDCG@k; and the catalog coverage of all their lists."""

    k: int
    recall: FloatArray
    ndcg: FloatArray
    coverage: float

    def means(self) -> dict[str, float]:
        """recall@k, ndcg@k, coverage@k and `users` (how many were evaluated)."""
        return {
            f"recall@{self.k}": float(self.recall.mean()) if self.recall.size else 0.0,
            f"ndcg@{self.k}": float(self.ndcg.mean()) if self.ndcg.size else 0.0,
            f"coverage@{self.k}": self.coverage,
            "users": float(self.recall.size),
        }


def _user_bounds(users: NDArray[np.int64]) -> list[tuple[int, int]]:
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    return list(zip(starts.tolist(), np.r_[starts[1:], len(users)].tolist(), strict=True))


def user_ranking(
    scores_of: FloatArray,
    weights: FloatArray,
    rows: pa.Table,
    *,
    k: int,
    relevant_above: float,
    candidates: NDArray[np.bool_] | None = None,
) -> UserRanking:
    """Rank the catalog for the users of `rows` (u, i, r, test); score = weights[u] · item row.

    `scores_of` holds one row per item (the item features), `weights` one row per u. Items
    outside `candidates` (default: all) are never recommended.
    """
    order = np.argsort(rows.column(USER).to_numpy(), kind="stable")
    users = rows.column(USER).to_numpy()[order]
    items = rows.column(ITEM).to_numpy()[order]
    held = rows.column(TEST).to_numpy(zero_copy_only=False)[order]
    relevant = held & (rows.column(REWARD).to_numpy()[order] > relevant_above)
    bounds = [(a, b) for a, b in _user_bounds(users) if relevant[a:b].any()]
    n_items = scores_of.shape[0]
    depth = min(k, n_items)  # a catalog smaller than k: rank all of it
    discounts = 1.0 / np.log2(np.arange(2, depth + 2))
    recall, ndcg, shown = [], [], np.zeros(n_items, dtype=bool)
    for first in range(0, len(bounds), _SCORE_USERS):
        block = bounds[first : first + _SCORE_USERS]
        scores = weights[[users[a] for a, _ in block]] @ scores_of.T
        if candidates is not None:
            scores[:, ~candidates] = -np.inf
        for row, (a, b) in enumerate(block):
            scores[row, items[a:b][~held[a:b]]] = -np.inf
        top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), 1), 1)
        for row, (a, b) in enumerate(block):
            wanted = items[a:b][relevant[a:b]]
            hits = np.isin(top[row], wanted)
            recall.append(hits.sum() / len(wanted))
            ndcg.append(float(discounts[hits].sum() / discounts[: min(len(wanted), depth)].sum()))
            shown[top[row]] = True
    return UserRanking(k, np.asarray(recall), np.asarray(ndcg), float(shown.mean()))


def ranking_metrics(
    features: FloatArray,
    weights: FloatArray,
    rows: pa.Table,
    *,
    k: int,
    relevant_above: float,
) -> dict[str, float]:
    """recall@k, NDCG@k, coverage@k and `users` of the users in `rows` (u, i, r, test)."""
    return user_ranking(features, weights, rows, k=k, relevant_above=relevant_above).means()


def squared_errors(
    features: FloatArray, weights: FloatArray, rows: pa.Table
) -> tuple[FloatArray, FloatArray]:
    """Per user of `weights`: the sum of squared errors on their held-out rows, and the count."""
    held = rows.column(TEST).to_numpy(zero_copy_only=False)
    users = rows.column(USER).to_numpy()[held]
    items = rows.column(ITEM).to_numpy()[held]
    errors = (
        np.einsum("ij,ij->i", features[items], weights[users])
        - rows.column(REWARD).to_numpy()[held]
    )
    n = weights.shape[0]
    sse: FloatArray = np.bincount(users, weights=errors * errors, minlength=n).astype(np.float64)
    counts: FloatArray = np.bincount(users, minlength=n).astype(np.float64)
    return sse, counts


def bootstrap(
    per_user: FloatArray, seed: int, *, counts: FloatArray | None = None
) -> tuple[float, float]:
    """95 % percentile interval of the mean over users (with `counts`: of sum / sum(counts))."""
    if per_user.size == 0:
        return (float("nan"), float("nan"))
    picks = np.random.default_rng(seed).integers(
        0, per_user.size, (BOOTSTRAP_RESAMPLES, per_user.size)
    )
    if counts is None:
        values = per_user[picks].mean(axis=1)
    else:
        values = per_user[picks].sum(axis=1) / np.maximum(counts[picks].sum(axis=1), 1.0)
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def training_counts(frame: DataFrame, n_items: int) -> FloatArray:
    """Training events per item in `frame` (u, i, r, test): the most-popular baseline's score."""
    table = frame.filter(~sf.col(TEST)).groupBy(ITEM).count().toArrow()
    counts = np.zeros(n_items)
    counts[table.column(ITEM).to_numpy()] = table.column("count").to_numpy()
    return counts


def sample_users(n_users: int, max_users: int, seed: int) -> NDArray[np.bool_]:
    """A seeded choice of at most `max_users` of the `n_users` dense user ids, as a mask."""
    chosen = np.ones(n_users, dtype=bool)
    if n_users > max_users:
        chosen[:] = False
        chosen[np.random.default_rng(seed).choice(n_users, max_users, replace=False)] = True
    return chosen


def rows_of(frame: DataFrame, chosen: NDArray[np.bool_]) -> pa.Table:
    """The (u, i, r, test, t) rows of the chosen users, collected to the driver, with u
    renumbered to the chosen users' rank (the row of their weights); t: `TIME`."""
    wanted = frame.select(USER, ITEM, REWARD, TEST, sf.unix_micros("timestamp").alias(TIME))
    if not chosen.all():
        users = pa.table({USER: pa.array(np.flatnonzero(chosen), pa.int32())})
        wanted = wanted.join(sf.broadcast(frame.sparkSession.createDataFrame(users)), USER)
    rows = wanted.toArrow()
    row_of = np.cumsum(chosen) - 1
    return rows.set_column(0, USER, pa.array(row_of[rows.column(USER).to_numpy()]))
