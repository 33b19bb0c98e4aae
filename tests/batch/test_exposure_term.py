"""The exposure term (batch.exposure_term) against its closed form, on planted features."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from batch.exposure_term import A_MIN, add_exposure_term, exposure_strength

RANK, N_ITEMS, N_USERS = 3, 40, 7
CONSTANT = 2 * RANK + 1
FloatArray = NDArray[np.float64]


def _planted(seed: int = 3) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.int64]]:
    """Items [v, y, mu + b, 1], rating weights, exposure directions [0, p, 0, 0], counts."""
    rng = np.random.default_rng(seed)
    items = np.hstack([
        rng.normal(size=(N_ITEMS, 2 * RANK)), 3.5 + rng.normal(size=(N_ITEMS, 1)),
        np.ones((N_ITEMS, 1)),
    ])  # fmt: skip
    weights = rng.normal(size=(N_USERS, 2 * RANK + 2))
    directions = np.zeros_like(weights)
    directions[:, RANK : 2 * RANK] = rng.normal(size=(N_USERS, RANK))
    counts = rng.integers(1, 200, size=N_USERS)
    return items, weights, directions, counts


def _by_hand(
    items: FloatArray, w: FloatArray, d: FloatArray, count: int, beta: float, n0: float
) -> FloatArray:
    """One user's calibrated scores, item by item, from the module doc's formula."""
    r, e = items @ w, items @ d
    q = np.maximum(e, 0.0) / np.maximum(e, 0.0).sum()
    b = beta * min(1.0, n0 / count)
    m, e_bar = float(q @ r), float(q @ e)
    summed = r + b * (e - e_bar)
    slope = float(q @ ((summed - m) * (r - m))) / float(q @ ((summed - m) ** 2))
    a = min(1.0, max(A_MIN, slope))
    return np.asarray(m + a * (summed - m))


def test_the_strength_is_beta_up_to_n0_events_then_falls_as_one_over_n() -> None:
    got = exposure_strength(np.array([0, 10, 50, 100, 400]), beta=2.0, n0=50.0)
    np.testing.assert_allclose(got, [2.0, 2.0, 2.0, 1.0, 0.25])


@pytest.mark.parametrize(("beta", "n0"), [(1.0, 25.0), (3.0, 100.0), (6.0, 400.0)])
def test_calibrated_scores_match_the_closed_form(beta: float, n0: float) -> None:
    items, weights, directions, counts = _planted()
    moved = add_exposure_term(items, weights, directions, counts, (beta, n0), CONSTANT)
    for u in range(N_USERS):
        expected = _by_hand(items, weights[u], directions[u], int(counts[u]), beta, n0)
        np.testing.assert_allclose(items @ moved[u], expected, rtol=1e-10, atol=1e-10)


def test_each_user_ranks_by_rating_plus_exposure_and_keeps_the_likely_level() -> None:
    items, weights, directions, counts = _planted(seed=8)
    moved = add_exposure_term(items, weights, directions, counts, (4.0, 50.0), CONSTANT)
    for u in range(N_USERS):
        r, e = items @ weights[u], items @ directions[u]
        b = 4.0 * min(1.0, 50.0 / counts[u])
        scores = items @ moved[u]
        # A positive affine map of r + b e: the same order, item for item.
        assert list(np.argsort(scores)) == list(np.argsort(r + b * e))
        q = np.maximum(e, 0.0) / np.maximum(e, 0.0).sum()
        assert q @ scores == pytest.approx(q @ r)  # the level where u is likely to rate


def test_beta_zero_and_users_without_exposure_keep_their_weights() -> None:
    items, weights, directions, counts = _planted()
    np.testing.assert_array_equal(
        add_exposure_term(items, weights, directions, counts, (0.0, 50.0), CONSTANT), weights
    )
    directions[2] = 0.0  # no exposure factors: e = 0 everywhere
    moved = add_exposure_term(items, weights, directions, counts, (3.0, 50.0), CONSTANT)
    np.testing.assert_array_equal(moved[2], weights[2])
    assert not np.allclose(moved[3], weights[3])


def test_a_user_whose_scores_are_all_exposure_keeps_the_smallest_slope() -> None:
    """Ratings flat across items (w only on the constant): the regression slope is 0, so
    a = A_MIN and the scores are the user's level plus A_MIN times the exposure term."""
    items, weights, directions, counts = _planted()
    weights[:] = 0.0
    weights[:, CONSTANT] = 3.0
    moved = add_exposure_term(items, weights, directions, counts, (2.0, 1000.0), CONSTANT)
    for u in range(N_USERS):
        e = items @ directions[u]
        q = np.maximum(e, 0.0) / np.maximum(e, 0.0).sum()
        expected = 3.0 + A_MIN * 2.0 * (e - q @ e)
        np.testing.assert_allclose(items @ moved[u], expected, atol=1e-12)
