"""The recovery measure: 1 for any invertible transform of the planted subspace, ~0 for noise."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.subspace import subspace_r2


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 5), st.integers(0, 4))
def test_invariant_to_invertible_maps_and_extra_columns(seed: int, k: int, extra: int) -> None:
    rng = np.random.default_rng(seed)
    planted = rng.normal(size=(200, k))
    mixing = rng.normal(size=(k, k)) + 3 * np.eye(k)  # well conditioned, invertible
    learned = np.hstack([planted @ mixing + 5.0, rng.normal(size=(200, extra))])
    assert subspace_r2(planted, learned) > 1 - 1e-9


def test_independent_features_explain_almost_nothing() -> None:
    rng = np.random.default_rng(0)
    assert subspace_r2(rng.normal(size=(5_000, 4)), rng.normal(size=(5_000, 4))) < 0.01


def test_half_the_subspace_gives_about_half() -> None:
    rng = np.random.default_rng(1)
    planted = rng.normal(size=(20_000, 2))
    assert abs(subspace_r2(planted, planted[:, :1]) - 0.5) < 0.02
