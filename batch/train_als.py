"""Train f(x; theta) with Spark's ALS and fold everything into one dot product.

Explicit ratings (the default). Item features and batch user weights are

    x_i = [v_i, s * y_i, mu + b_i, 1]        w_u = the ridge head of u over x (batch.head)

with v_i from a rating ALS on the residuals of the regularized baseline mu + b_u + b_i
(batch.biases), y_i from an exposure ALS (implicit) on which items each user rated, scaled by s
so both factor blocks have the same mean item norm (the online prior is isotropic, so a
block's scale is its prior weight). The head's coordinates on `mu + b_i` and on the constant
absorb the baseline, so `score = dot(x_i, w_u)` exactly, with no separate bias term. On
MovieLens-100k the exposure block brings most of the gain over plain ALS: which items a user
chose to rate says much about how they rate them.

Implicit feedback (`implicit=True`): x_i = y_i and w_u = the user factors of an implicit ALS
with confidence 1 + alpha * reward.

User heads (batch.head) are fitted with one of two priors: the population mean of the ALS
user weights (the head relearns every coordinate) or each user's own ALS weights
[u_u, 0, 1, b_u] (the head refines them). Lambda, the prior precision of that head and of the
online one, is a multiple m of the empirical-Bayes value lambda_EB = sigma^2 / tau^2: sigma^2
the training residual variance of the baseline predictor (of the preference, for implicit
ALS), tau^2 the per-coordinate variance of the ALS user weights around their mean. The prior
and m are chosen on validation rows (batch.protocol); every model uses m * its own lambda_EB.

Exposure prior (explicit ratings; docs/batch.md says why and what it costs). Every head's
prior also holds `kappa` pseudo-events per item over the whole catalog at reward `target`
("not chosen"), weight c = kappa / n_items: prior precision lambda (I + c XᵀX), mean
(I + c XᵀX)⁻¹ (w0 + c Xᵀ target 1). Shared by all users, it folds into the published features:
with M Mᵀ = I + c XᵀX, x̃ = M⁻¹ x and w̃0 = M⁻¹ (w0 + c Xᵀ target 1) give the isotropic prior
lambda I and the same scores, so the score contract and the online update are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
from numpy.typing import NDArray
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf

from batch.biases import RESIDUAL, Biases, fit_biases
from batch.errors import TrainingError
from batch.factorize import AlsSettings, Factors, fit_factors
from batch.head import fit_heads
from batch.options import TrainOptions
from batch.prepare import REWARD, USER
from batch.splits import TEST
from batch.stages import concurrently

# The best head lambda was found from 7x below lambda_EB (strong ALS regularization) to 5x
# above it (weak), so the multiples span both ways.
LAMBDA_MULTIPLIERS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0)
POPULATION, OWN = "population", "own ALS weights"
PRIORS = (POPULATION, OWN)
Choice = tuple[str, float]  # (prior, multiplier of lambda_EB)
CHOICES: tuple[Choice, ...] = tuple((p, m) for p in PRIORS for m in LAMBDA_MULTIPLIERS)
EXPOSURE = "exposure"


@dataclass(frozen=True)
class FeatureModel:
    """Item features `(n_items, d)` of one training set and what the user heads need.

    `cold_item` is the feature vector of an item without training events; rewards above
    `relevance_threshold` count as relevant for ranking. `own_weights` are each user's ALS
    weights (the population mean for users without training events). Implicit models also
    carry their ALS user weights and counts, with the training RMSE of the preference.
    """

    item_features: NDArray[np.float64]
    prior_mean: NDArray[np.float64]
    own_weights: NDArray[np.float64]
    lam_eb: float
    cold_item: NDArray[np.float64]
    relevance_threshold: float
    layout: dict[str, list[int]] = field(default_factory=dict)
    implicit_counts: NDArray[np.int64] | None = None
    implicit_rmse: float = float("nan")
    exposure_prior: tuple[float, float] = (0.0, 0.0)
    exposure_directions: NDArray[np.float64] | None = None
    """Per user, the exposure ALS factors as a feature-space direction d_u (x_iᵀ d_u = p_uᵀ y_i)
    for the exposure term (batch.exposure_term); None where there is none (implicit, deep,
    or features whitened by an exposure prior)."""

    def with_exposure_prior(self, kappa: float, target: float) -> FeatureModel:
        """This model with every head's prior given `kappa` pseudo-events per item at reward
        `target` (module doc, "Exposure prior"), folded into features and priors."""
        if kappa == 0.0:
            return self
        items = self.item_features
        weight = kappa / items.shape[0]
        inverse = exposure_whitening(items, kappa)
        # features x M^-T, weights M^-1 (w + c X^T t): the same dot products.
        shift = weight * target * items.sum(axis=0)
        whitened = (items @ inverse.T).astype(np.float32).astype(np.float64)
        return replace(
            self,
            item_features=whitened,
            prior_mean=inverse @ (self.prior_mean + shift),
            own_weights=(self.own_weights + shift) @ inverse.T,
            cold_item=inverse @ self.cold_item,
            layout={},
            exposure_prior=(kappa, target),
            exposure_directions=None,
        )


def exposure_whitening(items: NDArray[np.float64], kappa: float) -> NDArray[np.float64]:
    """M^-1, where M M^T = I + (kappa / n) X^T X: the exposure prior's change of basis; the
    folded features are `X @ M^-T` (`FeatureModel.with_exposure_prior`)."""
    root = np.linalg.cholesky(np.eye(items.shape[1]) + (kappa / items.shape[0]) * items.T @ items)
    inverse: NDArray[np.float64] = np.linalg.inv(root)
    return inverse


@dataclass(frozen=True)
class TrainedModel:
    """Features plus user weights `(len(choices), len(users), d)`, one set per choice.

    `users` are the dense ids the weight rows belong to (all users unless fewer were asked
    for); `lams`, `train_rmse` and `test_rmse` are per choice (test: NaN when nothing was held
    out or the model is implicit, whose rewards are not ratings).
    """

    features: FeatureModel
    choices: tuple[Choice, ...]
    lams: tuple[float, ...]
    users: NDArray[np.int64]
    user_weights: NDArray[np.float64]
    user_counts: NDArray[np.int64]
    train_rmse: NDArray[np.float64]
    test_rmse: NDArray[np.float64]
    user_grams: NDArray[np.float32] | None = None
    """Per user of `users`, sum x x^T over its training events, packed upper (batch.head):
    lambda I plus it is the precision of a one-choice head's posterior; None unless asked for."""


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
    table = train.groupBy(USER).count().toArrow()
    counts = np.zeros(n_users, dtype=np.int64)
    counts[table.column(USER).to_numpy()] = table.column("count").to_numpy()
    return counts


def _implicit_features(
    train: DataFrame, shape: tuple[int, int], options: TrainOptions
) -> FeatureModel:
    settings = als_settings(options)
    factors = fit_factors(train, REWARD, settings, implicit=True, shape=shape, score_training=True)
    trained = factors.user[factors.users_seen]
    return FeatureModel(
        item_features=factors.item,
        prior_mean=trained.mean(axis=0),
        own_weights=factors.user,
        lam_eb=_empirical_bayes_lambda(factors.train_mse, trained),
        cold_item=np.zeros(options.rank),
        relevance_threshold=0.0,
        layout={EXPOSURE: [0, options.rank]},
        implicit_counts=_user_counts(train, shape[0]),
        implicit_rmse=float(np.sqrt(factors.train_mse)),
    )


def _mean_norm(matrix: NDArray[np.float64]) -> float:
    norms = np.linalg.norm(matrix, axis=1)
    return float(norms[norms > 0].mean()) if (norms > 0).any() else 0.0


def exposure_scale(rating_items: NDArray[np.float64], exposure_items: NDArray[np.float64]) -> float:
    """s: the exposure block's scale in x_i (the rating block's mean item norm over its own)."""
    target, current = _mean_norm(rating_items), _mean_norm(exposure_items)
    return target / current if current > 0 and target > 0 else 1.0


def explicit_item_features(
    rating_items: NDArray[np.float64],
    exposure_items: NDArray[np.float64],
    item_baseline: NDArray[np.float64],
) -> NDArray[np.float64]:
    """x_i = [v_i, s · y_i, mu + b_i, 1] from the two factor blocks and mu + b_i (module doc).

    s (`exposure_scale`) gives the exposure block the rating block's mean item norm. Rounded to
    the float32 the snapshot stores, so that the heads are fitted on exactly the features that
    online scoring and updates use. The simulator builds its learner's features with this too.
    """
    blocks = [
        rating_items,
        exposure_scale(rating_items, exposure_items) * exposure_items,
        item_baseline[:, None],
        np.ones((item_baseline.shape[0], 1)),
    ]
    features: NDArray[np.float64] = np.hstack(blocks).astype(np.float32).astype(np.float64)
    return features


def fit_features(frame: DataFrame, shape: tuple[int, int], options: TrainOptions) -> FeatureModel:
    """The item features learned from the rows of `frame` (u, i, r, test) not held out.

    `shape` is (users, items) of the dense id space.
    """
    train = frame.filter(~sf.col(TEST)).cache()
    try:
        if options.implicit:
            return _implicit_features(train, shape, options)
        n_users, n_items = shape
        settings = als_settings(options)

        def rating_model() -> tuple[Biases, Factors]:
            biases, residual = fit_biases(train, n_users, n_items)
            return biases, fit_factors(residual, RESIDUAL, settings, implicit=False, shape=shape)

        exposed = train.withColumn(EXPOSURE, sf.lit(1.0))
        done = concurrently(
            {
                "rating": rating_model,
                "exposure": partial(
                    fit_factors, exposed, EXPOSURE, settings, implicit=True, shape=shape
                ),
            }
        )
        (biases, rating), exposure = done["rating"], done["exposure"]
    finally:
        train.unpersist()
    rank = options.rank
    features = explicit_item_features(rating.item, exposure.item, biases.mean + biases.item)
    als_weights = np.hstack(
        [rating.user, np.zeros((n_users, rank)), np.ones((n_users, 1)), biases.user[:, None]]
    )
    trained = als_weights[rating.users_seen]
    prior = trained.mean(axis=0)
    als_weights[~rating.users_seen] = prior
    free = np.r_[np.arange(rank), [2 * rank + 1]]  # the coordinates fitted per user
    directions = np.zeros_like(als_weights)
    directions[:, rank : 2 * rank] = exposure.user / exposure_scale(rating.item, exposure.item)
    return FeatureModel(
        item_features=features,
        prior_mean=prior,
        own_weights=als_weights,
        lam_eb=_empirical_bayes_lambda(biases.residual_var, trained[:, free]),
        cold_item=np.r_[np.zeros(2 * rank), [biases.mean, 1.0]],
        relevance_threshold=biases.mean,
        layout={
            "rating": [0, rank],
            EXPOSURE: [rank, 2 * rank],
            "item_bias": [2 * rank, 2 * rank + 1],
            "constant": [2 * rank + 1, 2 * rank + 2],
        },
        exposure_directions=directions,
    )


def fit_users(
    frame: DataFrame,
    n_users: int,
    features: FeatureModel,
    choices: Sequence[Choice] = CHOICES,
    keep: NDArray[np.bool_] | None = None,
    with_grams: bool = False,
) -> TrainedModel:
    """User weights over `features` for each (prior, m): lambda = m * lambda_EB.

    Heads are fitted on the training rows of `frame` and score its held-out rows; weights are
    kept for the users where `keep` is true (default all), with their Gram matrices if asked
    (`with_grams`). Implicit models keep their ALS user weights (one choice: lambda_EB; no
    Gram matrices: their weights are not a ridge posterior over the features).
    """
    if features.implicit_counts is not None:
        users = np.arange(n_users) if keep is None else np.flatnonzero(keep)
        return TrainedModel(
            features=features,
            choices=((OWN, 1.0),),
            lams=(features.lam_eb,),
            users=users,
            user_weights=features.own_weights[users][None],
            user_counts=features.implicit_counts,
            train_rmse=np.array([features.implicit_rmse]),
            test_rmse=np.array([np.nan]),
        )
    priors = [features.prior_mean, features.own_weights]
    plan = [(PRIORS.index(prior), m * features.lam_eb) for prior, m in choices]
    head = fit_heads(frame, features.item_features, priors, plan, n_users, keep, with_grams)
    return TrainedModel(
        features=features,
        choices=tuple(choices),
        lams=tuple(lam for _, lam in head.choices),
        users=head.users,
        user_weights=head.weights,
        user_counts=head.counts,
        train_rmse=head.rmse("train"),
        test_rmse=head.rmse("test") if head.n_test else np.full(len(plan), np.nan),
        user_grams=head.grams,
    )
