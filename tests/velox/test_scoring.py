"""score_items follows the score contract; top_k is exact, ordered and honours eligibility."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from velox.catalog import ItemMatrix
from velox.errors import DimensionError, InvalidInputError
from velox.scoring import score_items, score_many, score_rows, top_k, top_k_rows


def _reference(
    scores: NDArray[np.float64], k: int, eligible: NDArray[np.bool_]
) -> NDArray[np.intp]:
    """The first k eligible indices in (descending score, ascending index) order."""
    order = np.lexsort((np.arange(scores.size), -scores))
    return order[eligible[order]][:k]


@st.composite
def score_arrays(draw: st.DrawFn) -> NDArray[np.float64]:
    """Scores with many ties (small integer levels), sometimes large enough to sample."""
    n = draw(st.sampled_from([0, 1, 5, 50, 700, 5000, 20_000]))
    levels = draw(st.integers(1, 50))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.integers(0, levels, size=n).astype(np.float64) / 7.0


@settings(max_examples=150, deadline=None, derandomize=True)
@given(score_arrays(), st.integers(0, 60), st.integers(0, 2**32 - 1), st.booleans())
def test_top_k_matches_the_reference_order(
    scores: NDArray[np.float64], k: int, seed: int, use_allowed: bool
) -> None:
    rng = np.random.default_rng(seed)
    n = scores.size
    allowed = rng.random(n) < 0.7 if use_allowed else None
    exclude = rng.choice(n, size=min(n, int(rng.integers(0, 30))), replace=True)
    eligible = np.ones(n, dtype=np.bool_) if allowed is None else allowed.copy()
    eligible[exclude] = False
    got = top_k(scores, k, exclude=exclude, allowed=allowed)
    np.testing.assert_array_equal(got, _reference(scores, k, eligible))
    assert got.dtype == np.intp


def test_top_k_without_filters_on_continuous_scores() -> None:
    scores = np.random.default_rng(1).normal(size=100_000)
    np.testing.assert_array_equal(top_k(scores, 25), np.argsort(-scores)[:25])


def test_top_k_all_equal_scores_prefers_lower_indices() -> None:
    np.testing.assert_array_equal(top_k(np.zeros(10_000), 4), [0, 1, 2, 3])


def test_top_k_fewer_eligible_than_k() -> None:
    scores = np.array([3.0, 1.0, 2.0, 5.0])
    allowed = np.array([True, False, True, False])
    np.testing.assert_array_equal(top_k(scores, 10, allowed=allowed), [0, 2])
    np.testing.assert_array_equal(top_k(scores, 10, exclude=np.array([3, 0])), [2, 1])
    assert top_k(scores, 3, allowed=np.zeros(4, dtype=np.bool_)).size == 0


def test_top_k_rejects_bad_arguments() -> None:
    scores = np.zeros(5)
    with pytest.raises(InvalidInputError):
        top_k(scores, -1)
    with pytest.raises(InvalidInputError):
        top_k(scores, 2, exclude=np.array([5]))
    with pytest.raises(InvalidInputError):
        top_k(scores, 2, exclude=np.array([-1]))
    with pytest.raises(DimensionError):
        top_k(scores, 2, allowed=np.ones(4, dtype=np.bool_))


def test_score_items_is_the_float32_product() -> None:
    rng = np.random.default_rng(2)
    features = rng.normal(size=(300, 16)).astype(np.float32)
    items = ItemMatrix.from_features(features)
    w = rng.normal(size=16)
    scores = score_items(items, w)
    assert scores.dtype == np.float64
    np.testing.assert_array_equal(scores, features @ w.astype(np.float32))
    np.testing.assert_allclose(scores, features.astype(np.float64) @ w, rtol=1e-5, atol=1e-5)
    rows = np.array([5, 0, 299])
    np.testing.assert_allclose(score_rows(items, w, rows), scores[rows], rtol=1e-6)
    with pytest.raises(DimensionError):
        score_items(items, np.zeros(15))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.integers(0, 30), st.integers(1, 300), st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_top_k_rows_is_top_k_of_every_row(n: int, m: int, levels: int, seed: int) -> None:
    # Few levels: many ties, also at each row's boundary; some rows repeat another row.
    rng = np.random.default_rng(seed)
    scores = (rng.integers(0, levels, size=(n, m)) / 3.0).astype(np.float32)
    if n > 1:
        scores[n // 2] = scores[0]
    for k in (1, 5, m, m + 3):
        got = top_k_rows(scores, k)
        assert got.shape == (n, min(k, m)) and got.dtype == np.intp
        for row in range(n):
            np.testing.assert_array_equal(got[row], top_k(scores[row], k))


def test_top_k_rows_on_continuous_scores_and_bad_k() -> None:
    scores = np.random.default_rng(4).normal(size=(6, 5000)).astype(np.float32)
    np.testing.assert_array_equal(top_k_rows(scores, 20), np.argsort(-scores, axis=1)[:, :20])
    assert top_k_rows(scores, 0).shape == (6, 0)
    with pytest.raises(InvalidInputError):
        top_k_rows(scores, -1)


def test_score_many_rows_agree_with_score_items() -> None:
    rng = np.random.default_rng(5)
    items = ItemMatrix.from_features(rng.normal(size=(400, 12)).astype(np.float32))
    weights = rng.normal(size=(7, 12))
    many = score_many(items, weights)
    assert many.shape == (7, 400) and many.dtype == np.float32
    for row in range(7):
        np.testing.assert_allclose(
            many[row], score_items(items, weights[row]), rtol=1e-5, atol=1e-5
        )
    with pytest.raises(DimensionError):
        score_many(items, weights[:, :5])
