"""Ridge heads solved on the executors equal the closed form, for every lambda of the grid."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from pyspark.sql import DataFrame, SparkSession

from batch.head import fit_heads

pytestmark = pytest.mark.spark


def head_frame(
    spark: SparkSession,
    users: np.ndarray,
    items: np.ndarray,
    rewards: np.ndarray,
    test: np.ndarray,
) -> DataFrame:
    """The (u, i, r, test) frame `fit_heads` reads, over three partitions."""
    table = pa.table(
        {"u": pa.array(users, pa.int32()), "i": pa.array(items, pa.int32()), "r": rewards,
         "test": test}
    )  # fmt: skip
    return spark.createDataFrame(table).repartition(3)


def test_heads_match_the_closed_form(spark: SparkSession) -> None:
    rng = np.random.default_rng(11)
    n_users, n_items, dim = 7, 12, 3
    features = rng.normal(size=(n_items, dim))
    prior = rng.normal(size=dim)
    own = rng.normal(size=(n_users, dim))  # a prior per user
    users = rng.integers(0, n_users - 1, 300)  # the last user has no events at all
    items = rng.integers(0, n_items, 300)
    rewards = rng.normal(size=300)
    test = rng.random(300) < 0.25
    frame = head_frame(spark, users, items, rewards, test)
    choices = [(0, 0.5), (0, 4.0), (1, 2.0)]
    fit = fit_heads(frame, features, [prior, own], choices, n_users)
    assert fit.weights.shape == (3, n_users, dim)
    assert fit.n_train == int((~test).sum()) and fit.n_test == int(test.sum())
    for k, (which, lam) in enumerate(choices):
        sse_train = sse_test = 0.0
        for user in range(n_users):
            mine = users == user
            mean = prior if which == 0 else own[user]
            x, r = features[items[mine & ~test]], rewards[mine & ~test]
            w = np.linalg.solve(lam * np.eye(dim) + x.T @ x, lam * mean + x.T @ r)
            np.testing.assert_allclose(fit.weights[k, user], w, rtol=1e-10, atol=1e-12)
            sse_train += float(np.sum((x @ w - r) ** 2))
            held = mine & test
            sse_test += float(np.sum((features[items[held]] @ w - rewards[held]) ** 2))
        assert fit.train_sse[k] == pytest.approx(sse_train, rel=1e-10)
        assert fit.test_sse[k] == pytest.approx(sse_test, rel=1e-10)
    np.testing.assert_array_equal(fit.weights[:, n_users - 1], [prior, prior, own[-1]])
    np.testing.assert_array_equal(fit.counts, np.bincount(users[~test], minlength=n_users))
    some = np.zeros(n_users, dtype=bool)
    some[[1, 4]] = True
    part = fit_heads(frame, features, [prior, own], choices, n_users, keep=some)
    np.testing.assert_array_equal(part.users, [1, 4])
    np.testing.assert_allclose(part.weights, fit.weights[:, [1, 4]], rtol=1e-12)
    np.testing.assert_allclose(part.test_sse, fit.test_sse, rtol=1e-12)
