"""Train f(x; theta) with Spark's ALS and fold everything into one dot product.

Explicit ratings (the default). Item features and batch user weights are

    x_i = [v_i, s * y_i, mu + b_i, 1]        w_u = the ridge head of u over x (see batch.head)

with v_i from a rating ALS on the residuals of the regularized baseline mu + b_u + b_i, y_i from
an exposure ALS (implicit) on which items each user rated, scaled by s so both factor blocks
have the same mean item norm (the online prior is isotropic, so a block's scale is its prior
weight). The user head's coordinate on `mu + b_i` and on the constant absorb the baseline, so
`score = dot(x_i, w_u)` exactly, with no separate bias term. On MovieLens-100k the exposure
block carries most of the gain over plain ALS (which items a user chose to rate says much
about how they rate).

Implicit feedback (`implicit=True`): x_i = y_i and w_u = the ALS user factors of an implicit
ALS with confidence 1 + alpha * reward.

The prior precision lambda of the online head is the empirical-Bayes ratio sigma^2 / tau^2:
sigma^2 the ALS training residual variance, tau^2 the per-coordinate variance of the ALS user
weights around their mean (the population prior). The evaluation then picks, from a grid around
that value, the lambda that best predicts each user's later events from their earlier ones
(batch.evaluate): exactly the online head's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf

from batch.biases import RESIDUAL, fit_biases
from batch.errors import TrainingError
from batch.factorize import AlsSettings, Factors, fit_factors
from batch.head import fit_heads
from batch.options import TrainOptions
from batch.prepare import REWARD
from batch.splits import TEST

# Multiples of the empirical-Bayes lambda that the evaluation tries. The estimate only sees the
# rating factors; with the exposure block the best head lambda was found 7x below it (strong
# ALS regularization) to 5x above it (weak), so the grid spans both ways.
LAMBDA_GRID = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0)
EXPOSURE = "exposure"


@dataclass(frozen=True)
class TrainedModel:
    """Item features `(n_items, d)` and user weights `(len(lams), n_users, d)`, one per lambda.

    `train_rmse` / `test_rmse` are per lambda (test: NaN when nothing was held out or the
    model is implicit, whose rewards are not ratings). `cold_item` is the feature vector of an
    item without training events; rewards above `relevance_threshold` count as relevant.
    """

    item_features: NDArray[np.float64]
    user_weights: NDArray[np.float64]
    user_counts: NDArray[np.int64]
    prior_mean: NDArray[np.float64]
    lams: tuple[float, ...]
    train_rmse: NDArray[np.float64]
    test_rmse: NDArray[np.float64]
    lam_eb: float
    cold_item: NDArray[np.float64]
    relevance_threshold: float
    layout: dict[str, list[int]] = field(default_factory=dict)


def als_settings(options: TrainOptions) -> AlsSettings:
    """The ALS hyper-parameters of `options`."""
    return AlsSettings(
        rank=options.rank,
        reg_param=options.reg_param,
        iterations=options.iterations,
        seed=options.seed,
        alpha=options.implicit_alpha,
    )


def _empirical_bayes_lambda(noise_var: float, weights: NDArray[np.float64]) -> float:
    if len(weights) == 0:
        raise TrainingError("no user has a training event")
    spread = float(np.mean(np.var(weights, axis=0)))
    if not np.isfinite(spread) or spread <= 0 or not np.isfinite(noise_var):
        raise TrainingError(
            f"cannot set the prior precision: user weight variance {spread}, noise {noise_var}"
        )
    return max(noise_var, 1e-6) / spread


def _user_counts(train: DataFrame, n_users: int) -> NDArray[np.int64]:
    table = train.groupBy("u").count().toArrow()
    counts = np.zeros(n_users, dtype=np.int64)
    counts[table.column("u").to_numpy()] = table.column("count").to_numpy()
    return counts


def _train_implicit(
    frame: DataFrame, shape: tuple[int, int], options: TrainOptions
) -> TrainedModel:
    train = frame.filter(~sf.col(TEST))
    settings = als_settings(options)
    factors = fit_factors(train, REWARD, settings, implicit=True, shape=shape, score_training=True)
    counts = _user_counts(train, shape[0])
    trained = factors.users_seen
    lam = _empirical_bayes_lambda(factors.train_mse, factors.user[trained])
    rmse = np.array([np.sqrt(factors.train_mse)])
    return TrainedModel(
        item_features=factors.item,
        user_weights=factors.user[None],
        user_counts=counts,
        prior_mean=factors.user[trained].mean(axis=0),
        lams=(lam,),
        train_rmse=rmse,
        test_rmse=np.array([np.nan]),
        lam_eb=lam,
        cold_item=np.zeros(options.rank),
        relevance_threshold=0.0,
        layout={EXPOSURE: [0, options.rank]},
    )


def _exposure_scale(rating: Factors, exposure: Factors) -> float:
    def mean_norm(matrix: NDArray[np.float64]) -> float:
        norms = np.linalg.norm(matrix, axis=1)
        return float(norms[norms > 0].mean()) if (norms > 0).any() else 0.0

    target, current = mean_norm(rating.item), mean_norm(exposure.item)
    return target / current if current > 0 and target > 0 else 1.0


def train_model(
    frame: DataFrame,
    shape: tuple[int, int],
    options: TrainOptions,
    lams: Sequence[float] | None = None,
) -> TrainedModel:
    """Fit on the rows of `frame` (u, i, r, test) not held out; score the held-out rows.

    `shape` is (users, items) of the dense id space. Without `lams`, explicit models are fitted
    for the grid around the empirical-Bayes lambda.
    """
    if options.implicit:
        return _train_implicit(frame, shape, options)
    n_users, n_items = shape
    train = frame.filter(~sf.col(TEST)).cache()
    biases, residual = fit_biases(train, n_users, n_items)
    settings = als_settings(options)
    rating = fit_factors(residual, RESIDUAL, settings, implicit=False, shape=shape)
    exposed = train.withColumn(EXPOSURE, sf.lit(1.0))
    exposure = fit_factors(exposed, EXPOSURE, settings, implicit=True, shape=shape)
    rank = options.rank
    features = np.hstack(
        [
            rating.item,
            _exposure_scale(rating, exposure) * exposure.item,
            (biases.mean + biases.item)[:, None],
            np.ones((n_items, 1)),
        ]
    )
    als_weights = np.hstack(
        [rating.user, np.zeros((n_users, rank)), np.ones((n_users, 1)), biases.user[:, None]]
    )
    trained = als_weights[rating.users_seen]
    prior = trained.mean(axis=0)
    free = np.r_[np.arange(rank), [2 * rank + 1]]  # coordinates fitted per user
    lam_eb = _empirical_bayes_lambda(biases.residual_var, trained[:, free])
    grid = tuple(lams) if lams is not None else tuple(lam_eb * m for m in LAMBDA_GRID)
    head = fit_heads(frame, features, prior, grid, n_users)
    train.unpersist()
    return TrainedModel(
        item_features=features,
        user_weights=head.weights,
        user_counts=head.counts,
        prior_mean=prior,
        lams=head.lams,
        train_rmse=head.rmse("train"),
        test_rmse=head.rmse("test") if head.n_test else np.full(len(grid), np.nan),
        lam_eb=lam_eb,
        cold_item=np.r_[np.zeros(2 * rank), [biases.mean, 1.0]],
        relevance_threshold=biases.mean,
        layout={
            "rating": [0, rank],
            EXPOSURE: [rank, 2 * rank],
            "item_bias": [2 * rank, 2 * rank + 1],
            "constant": [2 * rank + 1, 2 * rank + 2],
        },
    )
