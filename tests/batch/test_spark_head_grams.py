"""The published head's Gram matrices: computed with the heads on the executors, equal to
Σ x xᵀ over each user's training events, and published as the users' batch precisions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import SparkSession

from batch.head import fit_heads
from batch.snapshot_builder import build_snapshot_data
from batch.train_als import FeatureModel, fit_users
from feature_store.registry import Registry
from tests.batch.test_spark_head import head_frame
from velox.packed import pack_upper
from velox.posterior import closed_form_mean

pytestmark = pytest.mark.spark


def test_grams_are_each_users_training_gram_matrix(spark: SparkSession, tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    n_users, n_items, dim = 6, 10, 3
    features = rng.normal(size=(n_items, dim))
    users = rng.integers(0, n_users - 1, 200)  # the last user has no events at all
    items = rng.integers(0, n_items, 200)
    rewards = rng.uniform(1, 5, 200)
    test = rng.random(200) < 0.3
    frame = head_frame(spark, users, items, rewards, test)
    prior = rng.normal(size=dim)
    some = np.array([True, False, True, True, False, True])
    fit = fit_heads(frame, features, [prior], [(0, 0.7)], n_users, keep=some, with_grams=True)
    assert fit.grams is not None and fit.grams.dtype == np.float32
    assert fit.grams.shape == (4, dim * (dim + 1) // 2)
    for row, user in enumerate(fit.users):
        x = features[items[(users == user) & ~test]]
        np.testing.assert_allclose(fit.grams[row], pack_upper(x.T @ x), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(fit.grams[-1], 0.0)  # no events: λI alone
    assert fit_heads(frame, features, [prior], [(0, 0.7)], n_users).grams is None

    found = FeatureModel(
        item_features=features, prior_mean=prior, own_weights=np.tile(prior, (n_users, 1)),
        lam_eb=1.4, cold_item=np.zeros(dim), relevance_threshold=3.5,
    )  # fmt: skip
    model = fit_users(frame, n_users, found, [("population", 0.5)], with_grams=True)
    data = build_snapshot_data(
        [f"u{u}" for u in range(n_users)], [f"i{i}" for i in range(n_items)], model, None,
        kind="mf", metrics={}, extra={}, training_cutoff=None,
    )  # fmt: skip
    registry = Registry(str(tmp_path))
    registry.publish("m", data)
    snapshot = registry.load("m")
    for user in range(n_users):
        mine = (users == user) & ~test
        x = features[items[mine]]
        precision = snapshot.precision_for(f"u{user}")
        assert precision is not None
        np.testing.assert_allclose(precision, 0.7 * np.eye(dim) + x.T @ x, rtol=1e-6, atol=1e-5)
        # Its batch mean is the ridge with that precision (prior mean, λ = 0.5 λ_EB = 0.7).
        w = closed_form_mean(prior, 0.7, x, rewards[mine])
        np.testing.assert_allclose(snapshot.w0_for(f"u{user}"), w, rtol=1e-5, atol=1e-6)
