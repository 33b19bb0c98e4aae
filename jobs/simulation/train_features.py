"""The item features `velox train` publishes for explicit ratings, fitted in numpy.

`batch.train_als.fit_features` (Spark) builds, for ratings,

    x_i = [v_i, s · y_i, mu + b_i, 1]        (d = 2 · rank + 2)

with mu + b_u + b_i the regularized baseline (`batch.biases`, one pass, pseudo-count
`BIAS_REG`), v_i the item factors of an explicit ALS on the baseline's residuals, y_i those of
an implicit ALS (Hu, Koren & Volinsky 2008) on which items each user rated (preference 1,
confidence 1 + alpha), and s the scale that gives both factor blocks the same mean item norm.
Both ALS fits use Spark's weighted-λ regularization (reg · the row's number of ratings).
This module fits the same three parts at `TrainOptions`' defaults in numpy and assembles x_i
with batch's own `explicit_item_features`, so that the simulator's
learner holds what a snapshot would hold without starting Spark for every seeded world
(factorize.py says why). Spark initialises its factors differently, so the two fits agree
in what they solve, not bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
from numpy.typing import NDArray

from batch.biases import BIAS_REG
from batch.options import TrainOptions
from batch.train_als import explicit_item_features
from jobs.simulation.factorize import IndexArray, ridge_rows, solve_rows
from velox.errors import InvalidInputError

FloatArray = NDArray[np.float64]

_DEFAULTS = TrainOptions()


@dataclass(frozen=True)
class TrainFeatures:
    """The fitted blocks of x_i = [v_i, s·y_i, mu + b_i, 1] and the baseline they sit on."""

    mean: float
    item_bias: FloatArray
    user_bias: FloatArray
    rating_users: FloatArray
    rating_factors: FloatArray
    exposure_factors: FloatArray

    def item_features(self) -> NDArray[np.float32]:
        """x_i as `velox train` assembles it (`batch.train_als.explicit_item_features`)."""
        features = explicit_item_features(
            self.rating_factors, self.exposure_factors, self.mean + self.item_bias
        )
        return features.astype(np.float32)


def baseline_biases(
    users: IndexArray, items: IndexArray, values: FloatArray, n_users: int, n_items: int,
    reg: float = BIAS_REG,
) -> tuple[float, FloatArray, FloatArray]:  # fmt: skip
    """mu, b_i = Σ(r - mu)/(n_i + reg), then b_u = Σ(r - mu - b_i)/(n_u + reg) (batch.biases)."""
    mean = float(values.mean())
    item_count = np.bincount(items, minlength=n_items)
    item_bias: FloatArray = np.bincount(items, weights=values - mean, minlength=n_items) / (
        item_count + reg
    )
    user_count = np.bincount(users, minlength=n_users)
    residual = values - mean - item_bias[items]
    user_bias: FloatArray = np.bincount(users, weights=residual, minlength=n_users) / (
        user_count + reg
    )
    return mean, item_bias, user_bias


def implicit_rows(
    incidence: sp.csr_matrix, other: FloatArray, reg: float, alpha: float
) -> FloatArray:
    """Implicit-ALS rows: (OᵀO + alpha Σ_rated o oᵀ + reg·n·I)⁻¹ (1 + alpha) Σ_rated o.

    Every pair is in the objective (preference 1 where rated, 0 elsewhere; confidence
    1 + alpha where rated, 1 elsewhere), so the Gram matrix is the dense OᵀO plus the rated
    pairs' extra confidence.
    """
    rhs = (1.0 + alpha) * np.asarray(incidence @ other)
    return ridge_rows(incidence, other, reg, rhs, weight=alpha, base=other.T @ other)


def fit_train_features(
    users: IndexArray,
    items: IndexArray,
    values: FloatArray,
    n_users: int,
    n_items: int,
    *,
    rank: int = _DEFAULTS.rank,
    reg: float = _DEFAULTS.reg_param,
    iterations: int = _DEFAULTS.iterations,
    alpha: float = _DEFAULTS.implicit_alpha,
    seed: int = 0,
) -> TrainFeatures:
    """Fit the baseline, the residual ALS and the exposure ALS of `velox train` (module doc)."""
    if values.shape[0] == 0:
        raise InvalidInputError("cannot factorize an empty set of ratings")
    if rank < 1 or iterations < 1 or reg <= 0.0 or alpha < 0.0:
        raise InvalidInputError("rank and iterations must be >= 1, reg > 0 and alpha >= 0")
    rng = np.random.default_rng(seed)
    mean, item_bias, user_bias = baseline_biases(users, items, values, n_users, n_items)
    residual = values - mean - item_bias[items] - user_bias[users]
    by_user = sp.csr_matrix((np.ones(values.shape[0]), (users, items)), shape=(n_users, n_items))
    by_item = by_user.T.tocsr()
    target_by_user = sp.csr_matrix((residual, (users, items)), shape=(n_users, n_items))
    target_by_item = target_by_user.T.tocsr()
    user_part = rng.normal(0.0, 0.1, (n_users, rank))
    item_part = rng.normal(0.0, 0.1, (n_items, rank))
    for _ in range(iterations):
        user_part = solve_rows(by_user, target_by_user, item_part, reg)
        item_part = solve_rows(by_item, target_by_item, user_part, reg)
    exposed_users = rng.normal(0.0, 0.1, (n_users, rank))
    exposed_items = rng.normal(0.0, 0.1, (n_items, rank))
    for _ in range(iterations):
        exposed_users = implicit_rows(by_user, exposed_items, reg, alpha)
        exposed_items = implicit_rows(by_item, exposed_users, reg, alpha)
    return TrainFeatures(
        mean=mean, item_bias=item_bias, user_bias=user_bias, rating_users=user_part,
        rating_factors=item_part, exposure_factors=exposed_items,
    )  # fmt: skip
