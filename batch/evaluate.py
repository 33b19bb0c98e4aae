"""Offline evaluation: a per-user time-ordered holdout and a random split.

Time-ordered holdout: the last `holdout_fraction` of each user's events (users with at least
`min_user_events`) are held out; the model is fitted on the rest. Reported: RMSE on the held-out
ratings (explicit models), and for ranking, over about `max_eval_users` users with a relevant
held-out event (reward above the training mean; any positive reward for implicit models):
recall@K (hits / relevant), NDCG@K (binary gains) and catalog coverage (share of the items that
appear in some top-K list). A user's training items are never recommended back.
Random split (explicit models): RMSE on a seeded 80/20 split of the events.
The user head (prior and lambda multiple, batch.train_als) is chosen on the time-ordered
holdout (lowest RMSE; implicit models have one), so the holdout RMSE is the chosen head's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf

from batch.options import TrainOptions
from batch.prepare import ITEM, REWARD, USER
from batch.splits import TEST
from batch.train_als import Choice, FeatureModel, TrainedModel, fit_users

_SCORE_USERS = 512  # users scored per matrix product


@dataclass(frozen=True)
class Evaluation:
    """Metrics of one evaluation, the chosen head (prior, lambda multiple), and why."""

    metrics: dict[str, float]
    choice: Choice
    details: dict[str, Any]


def ranking_metrics(
    features: NDArray[np.float64],
    weights: NDArray[np.float64],
    rows: pa.Table,
    *,
    k: int,
    relevant_above: float,
) -> dict[str, float]:
    """recall@k, NDCG@k and coverage@k of the users in `rows` (u, i, r, test).

    `weights` rows are indexed by u, `features` rows by i. Users without a relevant held-out
    event are skipped; the result has `users`, the number of users evaluated.
    """
    order = np.argsort(rows.column(USER).to_numpy(), kind="stable")
    users = rows.column(USER).to_numpy()[order]
    items = rows.column(ITEM).to_numpy()[order]
    relevant = rows.column(TEST).to_numpy(zero_copy_only=False)[order]
    relevant = relevant & (rows.column(REWARD).to_numpy()[order] > relevant_above)
    held = rows.column(TEST).to_numpy(zero_copy_only=False)[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    bounds = list(zip(starts, np.r_[starts[1:], len(users)], strict=True))
    bounds = [(a, b) for a, b in bounds if relevant[a:b].any()]
    name, k = k, min(k, features.shape[0])  # a catalog smaller than k: rank all of it
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    recall, ndcg, shown = [], [], np.zeros(features.shape[0], dtype=bool)
    for first in range(0, len(bounds), _SCORE_USERS):
        block = bounds[first : first + _SCORE_USERS]
        scores = weights[[users[a] for a, _ in block]] @ features.T
        for row, (a, b) in enumerate(block):
            seen = items[a:b][~held[a:b]]
            scores[row, seen] = -np.inf
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), 1), 1)
        for row, (a, b) in enumerate(block):
            wanted = items[a:b][relevant[a:b]]
            hits = np.isin(top[row], wanted)
            recall.append(hits.sum() / len(wanted))
            ideal = discounts[: min(len(wanted), k)].sum()
            ndcg.append(float(discounts[hits].sum() / ideal))
            shown[top[row]] = True
    return {
        f"recall@{name}": float(np.mean(recall)) if recall else 0.0,
        f"ndcg@{name}": float(np.mean(ndcg)) if ndcg else 0.0,
        f"coverage@{name}": float(shown.mean()),
        "users": float(len(bounds)),
    }


def sample_users(n_users: int, max_users: int, seed: int) -> NDArray[np.bool_]:
    """A seeded choice of at most `max_users` of the `n_users` dense user ids, as a mask."""
    chosen = np.ones(n_users, dtype=bool)
    if n_users > max_users:
        chosen[:] = False
        chosen[np.random.default_rng(seed).choice(n_users, max_users, replace=False)] = True
    return chosen


def _rows_of(frame: DataFrame, chosen: NDArray[np.bool_]) -> pa.Table:
    """The (u, i, r, test) rows of the chosen users, collected to the driver."""
    wanted = frame.select(USER, ITEM, REWARD, TEST)
    if not chosen.all():
        users = pa.table({USER: pa.array(np.flatnonzero(chosen), pa.int32())})
        spark = frame.sparkSession
        wanted = wanted.join(sf.broadcast(spark.createDataFrame(users)), USER)
    return wanted.toArrow()


def _best(model: TrainedModel) -> int:
    if np.isnan(model.test_rmse).all():
        return 0
    return int(np.nanargmin(model.test_rmse))


def evaluate_holdout(
    frame: DataFrame, features: FeatureModel, n_users: int, options: TrainOptions
) -> Evaluation:
    """Fit the user heads on `frame`'s time-ordered training part, choose the head, score.

    `frame` is the time-ordered holdout (batch.splits) and `features` were fitted on it.
    """
    chosen_users = sample_users(n_users, options.max_eval_users, options.seed)
    model = fit_users(frame, n_users, features, keep=chosen_users)
    best = _best(model)
    rows = _rows_of(frame, chosen_users)
    row_of = np.cumsum(chosen_users) - 1  # dense user id -> row of model.user_weights
    rows = rows.set_column(0, USER, pa.array(row_of[rows.column(USER).to_numpy()]))
    ranking = ranking_metrics(
        features.item_features,
        model.user_weights[best],
        rows,
        k=options.top_k,
        relevant_above=features.relevance_threshold,
    )
    users = ranking.pop("users")
    metrics = {f"holdout_{name}": value for name, value in ranking.items()}
    if not np.isnan(model.test_rmse[best]):
        metrics["holdout_rmse"] = float(model.test_rmse[best])
    details = {
        "lambda_empirical_bayes": features.lam_eb,
        "choices": [list(choice) for choice in model.choices],
        "holdout_rmse_by_choice": [float(x) for x in np.nan_to_num(model.test_rmse)],
        "chosen": list(model.choices[best]),
        "ranking_users": int(users),
        "relevant_above": features.relevance_threshold,
    }
    return Evaluation(metrics=metrics, choice=model.choices[best], details=details)


def random_split_rmse(
    frame: DataFrame, features: FeatureModel, n_users: int, choice: Choice
) -> float:
    """RMSE on the held-out rows of a random split `frame`, whose `features` were fitted on it."""
    none = np.zeros(n_users, dtype=bool)
    return float(fit_users(frame, n_users, features, [choice], keep=none).test_rmse[0])
