"""users.arrow's optional `gram` column: published, checked, and read back as the batch
heads' precisions (λI + Σ x xᵀ)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from batch.protocol import CARRIED_PRECISION_MAX_BYTES, carries_precision
from feature_store.arrow_tables import build_users, read_grams
from feature_store.errors import InvalidFactorsError
from feature_store.registry import Registry
from feature_store.snapshot_data import SnapshotData
from tests.feature_store.planted import planted_data
from velox.errors import InvalidInputError
from velox.packed import pack_upper


def _with_grams(data: SnapshotData, seed: int) -> tuple[SnapshotData, np.ndarray]:
    """`data` with a Gram matrix per user (Σ x xᵀ of random rows), and those matrices."""
    rng = np.random.default_rng(seed)
    dim = data.item_features.shape[1]
    rows = rng.normal(size=(len(data.user_ids), 4, dim))
    grams = rows.transpose(0, 2, 1) @ rows
    return replace(data, user_grams=pack_upper(grams).astype(np.float32)), grams


def test_gram_matrices_round_trip_into_the_heads_precisions(registry: Registry) -> None:
    data, grams = _with_grams(planted_data(seed=5), seed=5)
    registry.publish("movies", data)
    snapshot = registry.load("movies")
    assert snapshot.user_grams is not None and data.user_grams is not None
    np.testing.assert_array_equal(snapshot.user_grams, data.user_grams)
    user = data.user_ids[3]
    precision = snapshot.precision_for(user)
    expected = grams[3].astype(np.float32).astype(np.float64) + data.lam * np.eye(6)
    assert precision is not None
    np.testing.assert_allclose(precision, expected, rtol=1e-6)
    np.testing.assert_array_equal(precision, precision.T)
    assert snapshot.precision_for("nobody") is None
    prior = snapshot.prior_for(user)  # what the service and the policy evaluation start from
    np.testing.assert_allclose(prior.precision(), expected, rtol=1e-6)
    np.testing.assert_allclose(prior.mean(), data.user_weights[3], rtol=1e-6)
    unknown = snapshot.prior_for("nobody")
    np.testing.assert_array_equal(unknown.precision(), data.lam * np.eye(6))
    with pytest.raises(InvalidInputError, match="λI"):
        prior.recentred(np.zeros(6))  # its b = A w0 would be wrong with another mean


def test_gram_matrices_are_published_up_to_one_gibibyte() -> None:
    per_user = 34 * 35 // 2 * 4  # float32 upper triangle at dim 34
    most = CARRIED_PRECISION_MAX_BYTES // per_user
    assert carries_precision(most, 34) and not carries_precision(most + 1, 34)
    assert carries_precision(943, 34) and not carries_precision(10**6, 34)


def test_a_snapshot_without_grams_has_no_precisions(registry: Registry) -> None:
    data = planted_data(seed=6)
    registry.publish("movies", data)
    snapshot = registry.load("movies")
    assert snapshot.user_grams is None
    assert snapshot.precision_for(data.user_ids[0]) is None


@pytest.mark.parametrize("problem", ["width", "negative diagonal", "nan", "float64"])
def test_bad_gram_matrices_are_refused_before_anything_is_written(
    local_registry: Registry, problem: str
) -> None:
    data, _ = _with_grams(planted_data(seed=7), seed=7)
    assert data.user_grams is not None
    grams = data.user_grams.copy()
    if problem == "width":
        grams = grams[:, :-1]
    elif problem == "negative diagonal":
        grams[2, 0] = -1.0  # (0, 0) of user 2
    elif problem == "nan":
        grams[1, 4] = np.nan
    bad: Any = grams.astype(np.float64) if problem == "float64" else grams
    with pytest.raises(InvalidFactorsError):
        local_registry.publish("movies", replace(data, user_grams=bad))
    assert local_registry.versions("movies") == []


def test_a_mistyped_gram_column_is_refused_at_load() -> None:
    data, _ = _with_grams(planted_data(seed=8), seed=8)
    users = build_users(data.user_ids, data.user_weights, data.user_counts, 6, data.user_grams)
    assert read_grams(users, 6) is not None
    renamed = pa.RecordBatch.from_arrays(users.columns, names=["user_id", "w", "count", "other"])
    with pytest.raises(InvalidFactorsError):
        read_grams(renamed, 6)
    with pytest.raises(InvalidFactorsError):
        read_grams(users, 5)
    assert read_grams(users.select([0, 1, 2]), 6) is None
