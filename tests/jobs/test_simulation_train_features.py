"""The simulator's numpy port of `velox train`'s feature recipe, against closed forms and Spark."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp  # type: ignore[import-untyped]
from pyspark.sql import SparkSession

from batch.options import TrainOptions
from batch.prepare import ITEM, REWARD, USER
from batch.splits import TEST
from batch.train_als import fit_features
from jobs.simulation.environment import SimulationSetting, build_environment
from jobs.simulation.train_features import baseline_biases, fit_train_features, implicit_rows
from tests.jobs.test_simulation import SMALL, planted_ratings
from velox.errors import InvalidInputError


def test_baseline_biases_are_the_regularized_means_of_batch_biases() -> None:
    users, items = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 0, 0, 1, 2])
    values = np.array([5.0, 3.0, 4.0, 1.0, 2.0, 3.0])
    mean, item_bias, user_bias = baseline_biases(users, items, values, 3, 3, reg=1.0)
    assert mean == pytest.approx(3.0)
    # b_i = Σ(r - mu) / (n_i + 1): item 0 has 2, 1, -2 -> 1/4; item 1: 0, -1 -> -1/3; item 2: 0.
    assert item_bias.tolist() == pytest.approx([0.25, -1 / 3, 0.0])
    # b_u = Σ(r - mu - b_i) / (n_u + 1): user 0: (1.75 + 1/3) / 3.
    expected_user_0 = (5 - 3 - 0.25 + 3 - 3 + 1 / 3) / 3
    expected_user_2 = (1 - 3 - 0.25 + 2 - 3 + 1 / 3 + 0.0) / 4
    assert user_bias[[0, 2]].tolist() == pytest.approx([expected_user_0, expected_user_2])


def test_implicit_rows_zero_the_gradient_of_the_confidence_weighted_objective() -> None:
    rng = np.random.default_rng(4)
    rated = rng.random((7, 9)) < 0.4
    rated[:, 0] = True  # every row rates something
    other = rng.normal(size=(9, 3))
    reg, alpha = 0.2, 2.0
    rows = implicit_rows(sp.csr_matrix(rated.astype(float)), other, reg, alpha)
    preference = rated.astype(float)
    confidence = 1.0 + alpha * preference
    residual = preference - rows @ other.T
    counts = rated.sum(axis=1)
    gradient = -(confidence * residual) @ other + reg * counts[:, None] * rows
    assert np.abs(gradient).max() < 1e-10


def test_features_have_velox_trains_layout_and_fit_a_planted_model() -> None:
    ratings = planted_ratings()
    fitted = fit_train_features(
        ratings.users, ratings.items, ratings.values, ratings.n_users, ratings.n_items,
        rank=3, reg=0.01, iterations=15, seed=0,
    )  # fmt: skip
    features = fitted.item_features()
    assert features.shape == (ratings.n_items, 2 * 3 + 2)  # [v_i, s y_i, mu + b_i, 1]
    assert features.dtype == np.float32
    np.testing.assert_allclose(features[:, 6], fitted.mean + fitted.item_bias, rtol=1e-6)
    assert (features[:, 7] == 1.0).all()
    # Both factor blocks have the same mean item norm after scaling.
    norms = [
        np.linalg.norm(features[:, block], axis=1).mean() for block in (slice(0, 3), slice(3, 6))
    ]
    assert norms[0] == pytest.approx(norms[1], rel=1e-5)
    # The residual ALS explains the planted interaction term that the baseline cannot.
    baseline = fitted.mean + fitted.item_bias[ratings.items] + fitted.user_bias[ratings.users]
    interaction = np.einsum(
        "ij,ij->i", fitted.rating_users[ratings.users], fitted.rating_factors[ratings.items]
    )
    before = np.sqrt(np.mean((ratings.values - baseline) ** 2))
    after = np.sqrt(np.mean((ratings.values - baseline - interaction) ** 2))
    assert before > 0.5 and after < 0.33  # the planted noise is 0.3


def test_the_learner_follows_velox_train_by_default_and_keeps_the_old_one_on_request() -> None:
    ratings = planted_ratings()
    assert SimulationSetting().learner == "velox-train"
    default = build_environment(ratings, replace(SMALL, learner_rank=3), seed=3)
    old = build_environment(ratings, replace(SMALL, learner_rank=3, learner="biased-als"), seed=3)
    assert (default.items.dim, old.items.dim) == (2 * 3 + 2, 3 + 2)
    # The learner's features never change the hidden world.
    np.testing.assert_array_equal(default.like_probability, old.like_probability)
    with pytest.raises(InvalidInputError, match="learner must be one of"):
        build_environment(ratings, replace(SMALL, learner="spark"), seed=3)


def test_the_numpy_recipe_matches_velox_trains_spark_fit(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Planted low-rank ratings on a planted low-rank exposure (who rates what), so that both
    # factor blocks are identified; enough iterations that both fits converge (implicit ALS
    # converges slowly), with checkpoints so that Spark's lineage stays short.
    spark.sparkContext.setCheckpointDir(str(tmp_path_factory.mktemp("als-checkpoints")))
    rng = np.random.default_rng(0)
    n_users, n_items = 150, 100
    taste = rng.normal(0, 1, (n_users, 2)) @ rng.normal(0, 1, (n_items, 2)).T
    users, items = np.nonzero(rng.random((n_users, n_items)) < 1 / (1 + np.exp(1 - 1.5 * taste)))
    u, v = rng.normal(0, 0.6, (n_users, 2)), rng.normal(0, 0.6, (n_items, 2))
    values = (
        3.5 + rng.normal(0, 0.3, n_users)[users] + rng.normal(0, 0.5, n_items)[items]
        + np.einsum("ij,ij->i", u[users], v[items]) + rng.normal(0, 0.3, users.size)
    )  # fmt: skip
    options = TrainOptions(rank=2, reg_param=0.05, iterations=60)
    table = pa.table({
        USER: users.astype(np.int32), ITEM: items.astype(np.int32), REWARD: values,
        TEST: np.zeros(values.size, dtype=np.bool_),
    })  # fmt: skip
    shape = (n_users, n_items)
    theirs = fit_features(spark.createDataFrame(table), shape, options).item_features
    ours = fit_train_features(
        users, items, values, *shape,
        rank=options.rank, reg=options.reg_param, iterations=options.iterations,
    ).item_features()  # fmt: skip
    assert ours.shape == theirs.shape == (n_items, 2 * 2 + 2)
    # The baseline columns are the same closed form (float32 rounding apart).
    np.testing.assert_allclose(ours[:, 4:], theirs[:, 4:], rtol=1e-5, atol=1e-5)

    # ALS factors are unique up to a rotation: compare the items' Gram matrices, per block
    # and over both factor blocks at once (which also checks the exposure block's scale).
    def relative_gap(block: slice) -> float:
        mine, spark_gram = ours[:, block] @ ours[:, block].T, theirs[:, block] @ theirs[:, block].T
        return float(np.linalg.norm(mine - spark_gram) / np.linalg.norm(spark_gram))

    gaps = [relative_gap(block) for block in (slice(0, 2), slice(2, 4), slice(0, 4))]
    assert max(gaps) < 0.01, gaps
