"""Choose the user head on validation rows, and judge a fixed head on test rows.

The head is (exposure prior kappa and target, prior mean, lambda multiple m: batch.train_als;
the exposure term beta and n0: batch.exposure_term, offered with no prior on ALS features
and on deep ones, whose exposure block gives e_ui).
`choose_head` sees a frame with the test rows already removed (batch.splits.for_choosing) and
fits every candidate on the training rows, scoring the validation rows: among the candidates
whose validation RMSE is within `rmse_budget` (relative) of the best one, the one with the
highest validation NDCG@K wins (for implicit feedback, whose rewards are not ratings, only
NDCG counts). `judge_head` then scores that one head, and the most-popular baseline, on the
test rows of a frame (batch.splits.for_testing), with bootstrap intervals over users.

Users and items are taken as of the training rows: users without a training event and
held-out rows of items without one are left out (a global time split's test part holds
users and items that did not exist yet; nothing could have been recommended to or of them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from pyspark.sql import DataFrame

from batch.evaluate import (
    UserRanking,
    bootstrap,
    rows_of,
    sample_users,
    squared_errors,
    training_counts,
    user_ranking,
)
from batch.evaluate_current import VERSUS, CurrentModel, versus_current
from batch.exposure_term import add_exposure_term
from batch.options import TrainOptions
from batch.prepare import ITEM, USER
from batch.splits import TEST
from batch.train_als import CHOICES, FeatureModel, TrainedModel, fit_users

KAPPAS = (0.25, 0.5, 1.0, 2.0, 4.0)
TARGET_FRACTIONS = (0.0, 0.3)
"""Exposure-prior candidates: pseudo-events per item, at these fractions of the mean rating."""
EXPOSURE_GRID = ((0.0, 0.0), *((k, f) for k in KAPPAS for f in TARGET_FRACTIONS))
TERM_BETAS = (1.0, 2.0, 3.0, 4.0)
TERM_USERS = (25.0, 50.0, 100.0, 400.0)
"""Exposure-term candidates (beta, n0), each on every head without an exposure prior."""
TERM_GRID = tuple((b, n) for b in TERM_BETAS for n in TERM_USERS)


@dataclass(frozen=True)
class HeadChoice:
    """One candidate head: exposure prior (kappa, target fraction), prior kind, lambda multiple,
    and the exposure term (beta, n0; beta 0: none)."""

    kappa: float
    target_fraction: float
    prior: str
    multiplier: float
    term_beta: float = 0.0
    term_users: float = 0.0

    def features(self, model: FeatureModel) -> FeatureModel:
        """`model` with this choice's exposure prior folded in."""
        target = self.target_fraction * model.relevance_threshold
        return model.with_exposure_prior(self.kappa, target)

    def user_weights(
        self, fitted: FeatureModel, model: TrainedModel, weights: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """`weights` (rows of `model.users`, over `fitted`, this choice's features) with this
        choice's exposure term added (batch.exposure_term)."""
        return with_term(fitted, model, weights, (self.term_beta, self.term_users))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "kappa": self.kappa, "target_fraction": self.target_fraction, "prior": self.prior,
            "multiplier": self.multiplier, "term_beta": self.term_beta,
            "term_users": self.term_users,
        }  # fmt: skip


def with_term(
    fitted: FeatureModel,
    model: TrainedModel,
    weights: NDArray[np.float64],
    term: tuple[float, float],
) -> NDArray[np.float64]:
    """`weights` (rows of `model.users`) plus the exposure term (beta, n0); unchanged for beta 0."""
    if term[0] == 0.0:
        return weights
    if fitted.exposure_directions is None or "constant" not in fitted.layout:
        raise ValueError("the exposure term needs ALS features without an exposure prior")
    return add_exposure_term(
        fitted.item_features, weights, fitted.exposure_directions[model.users],
        model.user_counts[model.users], term, fitted.layout["constant"][0],
    )  # fmt: skip


def fit_chosen(
    frame: DataFrame,
    n_users: int,
    fitted: FeatureModel,
    choice: HeadChoice,
    keep: NDArray[np.bool_] | None = None,
    with_grams: bool = False,
) -> TrainedModel:
    """The chosen head's user weights over `fitted` (its features), exposure term included,
    and with `with_grams` the users' Gram matrices (the published head's precision, less λI)."""
    model = fit_users(
        frame, n_users, fitted, [(choice.prior, choice.multiplier)], keep=keep,
        with_grams=with_grams,
    )  # fmt: skip
    return replace(
        model, user_weights=choice.user_weights(fitted, model, model.user_weights[0])[None]
    )


@dataclass(frozen=True)
class EvaluationRows:
    """Rows of the evaluated users on the driver, the candidate items, the popularity scores."""

    table: pa.Table
    users: NDArray[np.bool_]
    candidates: NDArray[np.bool_]
    popularity: NDArray[np.float64]


def evaluation_rows(
    frame: DataFrame, n_users: int, n_items: int, options: TrainOptions
) -> EvaluationRows:
    """The held-out rows of the evaluated users and items (module doc), on the driver."""
    chosen = sample_users(n_users, options.max_eval_users, options.seed)
    table = rows_of(frame, chosen)
    counts = training_counts(frame, n_items)
    trained = ~table.column(TEST).to_numpy(zero_copy_only=False)
    known_users = np.zeros(int(chosen.sum()), dtype=bool)
    known_users[table.column(USER).to_numpy()[trained]] = True
    keep = known_users[table.column(USER).to_numpy()] & (counts[table.column(ITEM).to_numpy()] > 0)
    return EvaluationRows(table.filter(pa.array(keep)), chosen, counts > 0, counts)


def score_head(
    features: FeatureModel,
    weights: NDArray[np.float64],
    rows: EvaluationRows,
    options: TrainOptions,
) -> tuple[UserRanking, NDArray[np.float64], NDArray[np.float64]]:
    """Ranking of `weights` (rows of the evaluated users) and their per-user squared errors."""
    ranking = user_ranking(
        features.item_features, weights, rows.table, k=options.top_k,
        relevant_above=features.relevance_threshold, candidates=rows.candidates,
    )  # fmt: skip
    sse, counts = squared_errors(features.item_features, weights, rows.table)
    return ranking, sse, counts


def choose_head(
    frame: DataFrame, features: FeatureModel, shape: tuple[int, int], options: TrainOptions
) -> tuple[HeadChoice, list[dict[str, Any]]]:
    """The head chosen on `frame`'s validation rows (module doc), and every candidate's scores.

    `frame` must not hold test rows: it is the output of `batch.splits.for_choosing`.
    """
    rows = evaluation_rows(frame, shape[0], shape[1], options)
    implicit = features.implicit_counts is not None
    # The exposure prior is folded into the features (a deep model records the change of basis
    # for its tower: DeepFeatureModel.with_exposure_prior); implicit features are exposure already.
    grid = EXPOSURE_GRID if not implicit else ((0.0, 0.0),)
    scored: list[tuple[HeadChoice, float, float]] = []
    for kappa, fraction in grid:
        base = HeadChoice(kappa, fraction, "", 0.0)
        fitted = base.features(features)
        model = fit_users(frame, shape[0], fitted, CHOICES, keep=rows.users)
        terms = [(0.0, 0.0)]
        if kappa == 0.0 and fitted.exposure_directions is not None:
            terms += TERM_GRID
        for index, (prior, multiplier) in enumerate(model.choices):
            for term in terms:
                weights = with_term(fitted, model, model.user_weights[index], term)
                ranking, sse, counts = score_head(fitted, weights, rows, options)
                rmse = (
                    math.sqrt(sse.sum() / counts.sum())
                    if counts.sum() and not implicit
                    else math.nan
                )
                choice = HeadChoice(kappa, fraction, prior, multiplier, *term)
                ndcg = float(ranking.ndcg.mean()) if ranking.ndcg.size else 0.0
                scored.append((choice, rmse, ndcg))
    rmses = [rmse for _, rmse, _ in scored if not math.isnan(rmse)]
    ceiling = min(rmses) * (1.0 + options.rmse_budget) if rmses else math.inf
    eligible = [item for item in scored if math.isnan(item[1]) or item[1] <= ceiling]
    best = max(eligible, key=lambda item: item[2])[0]
    table = [  # JSON for the manifest: no NaN (an implicit model has no RMSE)
        {**choice.as_dict(), "validation_rmse": None if math.isnan(rmse) else rmse,
         "validation_ndcg": ndcg}
        for choice, rmse, ndcg in scored
    ]  # fmt: skip
    return best, table


def _interval(values: NDArray[np.float64], seed: int, **counts: Any) -> dict[str, float]:
    low, high = bootstrap(values, seed, **counts)
    return {"low": low, "high": high}


def judge_head(
    frame: DataFrame,
    features: FeatureModel,
    shape: tuple[int, int],
    options: TrainOptions,
    choice: HeadChoice,
    current: CurrentModel | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics of `choice` on `frame`'s test rows and of the most-popular list, with intervals.

    Returns {metric: {"value", "low", "high"}}; the baseline's metrics are named
    `most_popular_<metric>`. With `current`, `VERSUS` holds both models' metrics on the test
    rows the current version never trained on (batch.evaluate_current).
    """
    fitted = choice.features(features)
    rows = evaluation_rows(frame, shape[0], shape[1], options)
    weights = fit_chosen(frame, shape[0], fitted, choice, keep=rows.users).user_weights[0]
    ranking, sse, counts = score_head(fitted, weights, rows, options)
    popular = user_ranking(
        rows.popularity[:, None], np.ones((weights.shape[0], 1)), rows.table, k=options.top_k,
        relevant_above=fitted.relevance_threshold, candidates=rows.candidates,
    )  # fmt: skip
    k, seed = options.top_k, options.seed
    found: dict[str, dict[str, float]] = {}
    for prefix, result in (("", ranking), ("most_popular_", popular)):
        for name, values in ((f"recall@{k}", result.recall), (f"ndcg@{k}", result.ndcg)):
            mean = float(values.mean()) if values.size else 0.0
            found[prefix + name] = {"value": mean, **_interval(values, seed)}
    found[f"coverage@{k}"] = {"value": ranking.coverage}
    found["users"] = {"value": float(ranking.ndcg.size)}
    if features.implicit_counts is None and counts.sum():
        rmse = math.sqrt(sse.sum() / counts.sum())
        low, high = bootstrap(sse, seed, counts=counts)
        found["rmse"] = {"value": rmse, "low": math.sqrt(low), "high": math.sqrt(high)}
    if current is not None:
        found[VERSUS] = versus_current(
            current, rows.table, rows.users, rows.candidates,
            (fitted.item_features, weights), k=k, relevant_above=fitted.relevance_threshold,
            implicit=features.implicit_counts is not None,
        )  # fmt: skip
    return found
