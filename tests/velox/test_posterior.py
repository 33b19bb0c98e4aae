"""UserPosterior against the batch closed form, its numerical stability and its validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from velox.errors import DimensionError, InvalidInputError, NonFiniteError
from velox.posterior import REFRESH_EVERY, UserPosterior, closed_form_mean

History = tuple[
    NDArray[np.float64], float, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]
]


def _relative_error(got: NDArray[np.float64], want: NDArray[np.float64]) -> float:
    return float(np.linalg.norm(got - want)) / max(float(np.linalg.norm(want)), 1e-300)


@st.composite
def histories(draw: st.DrawFn) -> History:
    """A prior and a sequence of weighted observations, well enough conditioned for 1e-9."""
    dim = draw(st.integers(1, 12))
    n = draw(st.integers(0, 3 * REFRESH_EVERY))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    lam = draw(st.floats(0.1, 10.0))
    scale = draw(st.floats(0.1, 3.0))
    w0 = rng.normal(size=dim)
    features = rng.normal(scale=scale, size=(n, dim))
    rewards = rng.normal(scale=2.0, size=n)
    weights = rng.uniform(0.1, 3.0, size=n)
    return w0, lam, features, rewards, weights


@settings(max_examples=60, deadline=None, derandomize=True)
@given(histories())
def test_incremental_mean_equals_batch_closed_form(
    history: History,
) -> None:
    w0, lam, features, rewards, weights = history
    posterior = UserPosterior.prior(w0, lam)
    for x, r, w in zip(features, rewards, weights, strict=True):
        posterior.update(x, r, w)
    expected = closed_form_mean(w0, lam, features, rewards, weights)
    assert _relative_error(posterior.mean(), expected) < 1e-9
    assert posterior.count == len(rewards)
    precision = lam * np.eye(len(w0)) + (features * weights[:, None]).T @ features
    np.testing.assert_allclose(posterior.precision(), precision, rtol=1e-12, atol=1e-12)
    factor = posterior.cov_factor()
    np.testing.assert_allclose(factor @ factor.T @ precision, np.eye(len(w0)), atol=1e-9)
    # eigvalsh itself is only accurate to rounding, hence the 1e-12 slack.
    assert lam <= posterior.precision_floor <= np.linalg.eigvalsh(precision)[0] * (1 + 1e-12)


def test_order_of_observations_does_not_matter() -> None:
    rng = np.random.default_rng(3)
    features = rng.normal(size=(150, 6))
    rewards = rng.normal(size=150)
    forward = UserPosterior.prior(np.zeros(6), 1.0)
    backward = UserPosterior.prior(np.zeros(6), 1.0)
    for i in range(150):
        forward.update(features[i], rewards[i])
        backward.update(features[149 - i], rewards[149 - i])
    assert _relative_error(forward.mean(), backward.mean()) < 1e-10


def test_stays_positive_definite_and_exact_over_1e5_updates() -> None:
    rng = np.random.default_rng(11)
    dim, n = 4, 100_000
    features = rng.normal(size=(n, dim)) * np.array([1.0, 1e-3, 10.0, 1.0])
    rewards = features @ np.array([0.5, -1.0, 0.1, 2.0]) + rng.normal(scale=0.1, size=n)
    posterior = UserPosterior.prior(np.zeros(dim), 0.5)
    for x, r in zip(features, rewards, strict=True):
        posterior.update(x, r)
    precision = posterior.precision()
    assert np.all(np.linalg.eigvalsh(precision) > 0)
    factor = posterior.cov_factor()
    assert np.all(np.linalg.eigvalsh(factor @ factor.T) > 0)
    np.testing.assert_allclose(factor @ factor.T @ precision, np.eye(dim), atol=1e-9)
    expected = closed_form_mean(np.zeros(dim), 0.5, features, rewards)
    assert _relative_error(posterior.mean(), expected) < 1e-9
    # The floor is proven (below λ_min(A) = 0.6) and has risen above the prior's λ = 0.5.
    assert 0.5 < posterior.precision_floor <= np.linalg.eigvalsh(precision)[0]


def test_std_is_the_closed_form_predictive_std() -> None:
    rng = np.random.default_rng(5)
    features = rng.normal(size=(40, 5))
    posterior = UserPosterior.prior(np.zeros(5), 2.0, noise_std=0.7)
    for x in features:
        posterior.update(x, 1.0)
    covariance = np.linalg.inv(2.0 * np.eye(5) + features.T @ features)
    queries = rng.normal(size=(9, 5)).astype(np.float32)
    q64 = queries.astype(np.float64)
    expected = 0.7 * np.sqrt(np.einsum("ij,jk,ik->i", q64, covariance, q64))
    np.testing.assert_allclose(posterior.std(queries), expected, rtol=1e-10)


def test_samples_have_the_posterior_mean_and_covariance() -> None:
    rng = np.random.default_rng(8)
    features = rng.normal(size=(6, 3))
    posterior = UserPosterior.prior(np.array([1.0, -1.0, 0.5]), 1.5, noise_std=2.0)
    for x in features:
        posterior.update(x, 0.3)
    covariance = 4.0 * np.linalg.inv(1.5 * np.eye(3) + features.T @ features)
    draws = np.array([posterior.sample(np.random.default_rng(i)) for i in range(20_000)])
    # 20,000 draws: the sample mean's std is sqrt(diag(cov) / 20000); allow 4 of them.
    tolerance = 4 * np.sqrt(np.diag(covariance) / 20_000)
    assert np.all(np.abs(draws.mean(axis=0) - posterior.mean()) < tolerance)
    np.testing.assert_allclose(np.cov(draws.T), covariance, rtol=0.05, atol=0.02)


def test_prior_state() -> None:
    posterior = UserPosterior.prior([1.0, 2.0], lam=4.0, noise_std=0.5)
    assert (posterior.dim, posterior.lam, posterior.noise_std, posterior.count) == (2, 4.0, 0.5, 0)
    np.testing.assert_array_equal(posterior.mean(), [1.0, 2.0])
    np.testing.assert_allclose(posterior.std(np.eye(2)), [0.25, 0.25])
    np.testing.assert_array_equal(posterior.precision(), 4.0 * np.eye(2))


@pytest.mark.parametrize(
    ("x", "reward", "weight", "error"),
    [
        (np.zeros(2), 1.0, 1.0, DimensionError),
        (np.zeros((3, 1)), 1.0, 1.0, DimensionError),
        (np.array([np.nan, 0.0, 0.0]), 1.0, 1.0, NonFiniteError),
        (np.array([np.inf, 0.0, 0.0]), 1.0, 1.0, NonFiniteError),
        (np.array([1e200, 0.0, 0.0]), 1.0, 1.0, NonFiniteError),
        (np.ones(3), float("nan"), 1.0, NonFiniteError),
        (np.ones(3), float("inf"), 1.0, NonFiniteError),
        (np.ones(3), 1.0, float("nan"), NonFiniteError),
        (np.ones(3), 1.0, 0.0, InvalidInputError),
        (np.ones(3), 1.0, -1.0, InvalidInputError),
    ],
)
def test_bad_update_raises_and_changes_nothing(
    x: NDArray[np.float64], reward: float, weight: float, error: type[Exception]
) -> None:
    posterior = UserPosterior.prior([0.1, 0.2, 0.3], 1.0)
    posterior.update([1.0, 0.0, 2.0], 0.5)
    before = posterior.copy()
    with pytest.raises(error):
        posterior.update(x, reward, weight)
    assert posterior.count == before.count
    np.testing.assert_array_equal(posterior.mean(), before.mean())
    np.testing.assert_array_equal(posterior.cov_factor(), before.cov_factor())
    np.testing.assert_array_equal(posterior.precision(), before.precision())
    np.testing.assert_array_equal(posterior.statistic_b(), before.statistic_b())


@pytest.mark.parametrize(
    ("w0", "lam", "noise_std", "error"),
    [
        ([], 1.0, 1.0, DimensionError),
        ([[1.0]], 1.0, 1.0, DimensionError),
        ([np.nan], 1.0, 1.0, NonFiniteError),
        ([1.0], 0.0, 1.0, InvalidInputError),
        ([1.0], float("inf"), 1.0, NonFiniteError),
        ([1.0], 1.0, -2.0, InvalidInputError),
    ],
)
def test_bad_prior_raises(w0: list[float], lam: float, noise_std: float, error: type) -> None:
    with pytest.raises(error):
        UserPosterior.prior(w0, lam, noise_std)


def test_copy_is_independent_and_mean_is_read_only() -> None:
    posterior = UserPosterior.prior(np.zeros(3), 1.0)
    twin = posterior.copy()
    twin.update(np.ones(3), 5.0)
    np.testing.assert_array_equal(posterior.mean(), np.zeros(3))
    assert posterior.count == 0 and twin.count == 1
    with pytest.raises(ValueError, match="read-only"):
        posterior.mean()[0] = 1.0


def test_closed_form_rejects_mismatched_lengths() -> None:
    with pytest.raises(DimensionError):
        closed_form_mean(np.zeros(2), 1.0, np.zeros((3, 2)), np.zeros(2))


def test_recentred_prior_updates_to_the_closed_form_and_leaves_the_template_alone() -> None:
    rng = np.random.default_rng(3)
    template = UserPosterior.prior(np.zeros(4), 2.5, noise_std=0.7)
    w0 = rng.normal(size=4)
    features = rng.normal(size=(2 * REFRESH_EVERY + 5, 4))
    rewards = rng.normal(size=(features.shape[0],))
    recentred = template.recentred(w0)
    fresh = UserPosterior.prior(w0, 2.5, noise_std=0.7)
    np.testing.assert_array_equal(recentred.mean(), fresh.mean())
    np.testing.assert_array_equal(recentred.statistic_b(), fresh.statistic_b())
    np.testing.assert_array_equal(recentred.precision(), fresh.precision())
    for x, r in zip(features, rewards, strict=True):
        recentred.update(x, r)
    want = closed_form_mean(w0, 2.5, features, rewards)
    assert _relative_error(recentred.mean(), want) < 1e-9
    # The template's shared statistics were copied, not written.
    np.testing.assert_array_equal(template.precision(), 2.5 * np.eye(4))
    np.testing.assert_array_equal(template.cov_factor(), np.eye(4) / np.sqrt(2.5))
    np.testing.assert_array_equal(template.mean(), np.zeros(4))


@pytest.mark.parametrize(
    ("w0", "error"),
    [([1.0, 2.0], DimensionError), ([np.nan, 0.0, 0.0], NonFiniteError)],
)
def test_recentred_refuses_bad_means(w0: list[float], error: type) -> None:
    with pytest.raises(error):
        UserPosterior.prior(np.zeros(3), 1.0).recentred(w0)


def test_only_a_prior_is_recentred() -> None:
    posterior = UserPosterior.prior(np.zeros(2), 1.0)
    posterior.update([1.0, 0.0], 1.0)
    with pytest.raises(InvalidInputError):
        posterior.recentred([0.0, 1.0])
