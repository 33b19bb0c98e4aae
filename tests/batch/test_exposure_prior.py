"""The exposure prior folded into features: the same posterior as the explicit pseudo-events."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.train_als import FeatureModel


def _model(rng: np.random.Generator, n: int, d: int) -> FeatureModel:
    features = rng.normal(0.0, 1.0, (n, d)).astype(np.float32).astype(np.float64)
    return FeatureModel(
        item_features=features, prior_mean=rng.normal(0.0, 1.0, d),
        own_weights=rng.normal(0.0, 1.0, (5, d)), lam_eb=1.0, cold_item=rng.normal(0.0, 1.0, d),
        relevance_threshold=3.5, layout={"rating": [0, d]},
    )  # fmt: skip


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([0.25, 1.0, 4.0]), st.sampled_from([0.0, 1.2]))
def test_folded_prior_scores_equal_the_pseudo_event_posterior(
    seed: int, kappa: float, target: float
) -> None:
    rng = np.random.default_rng(seed)
    n, d, lam = 40, 5, 2.0
    plain = _model(rng, n, d)
    folded = plain.with_exposure_prior(kappa, target)
    x, xt = plain.item_features, folded.item_features
    rated = rng.choice(n, 6, replace=False)
    rewards = rng.uniform(1.0, 5.0, 6)
    # Explicit: every item once more at reward `target` with weight c = kappa / n, scaled by λ.
    c = kappa / n
    precision = lam * (np.eye(d) + c * x.T @ x) + x[rated].T @ x[rated]
    moment = lam * (plain.prior_mean + c * target * x.sum(axis=0)) + x[rated].T @ rewards
    expected = x @ np.linalg.solve(precision, moment)
    # Folded: an isotropic prior λI over the published features, as the online head keeps it.
    w = np.linalg.solve(
        lam * np.eye(d) + xt[rated].T @ xt[rated], lam * folded.prior_mean + xt[rated].T @ rewards
    )
    np.testing.assert_allclose(xt @ w, expected, rtol=1e-4, atol=1e-4)  # float32 features
    own = np.linalg.solve(np.eye(d) + c * x.T @ x, (plain.own_weights + c * target * x.sum(0)).T)
    np.testing.assert_allclose(xt @ folded.own_weights.T, x @ own, rtol=1e-4, atol=1e-4)
    assert folded.layout == {} and folded.exposure_prior == (kappa, target)
    assert np.array_equal(xt, xt.astype(np.float32))  # stored exactly as the snapshot stores it


def test_kappa_zero_is_the_plain_model() -> None:
    plain = _model(np.random.default_rng(0), 10, 3)
    assert plain.with_exposure_prior(0.0, 1.0) is plain
