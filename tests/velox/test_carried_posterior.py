"""A prior carrying a batch posterior's precision: prior plus later events is the ridge over all."""

from __future__ import annotations

import numpy as np
import pytest

from velox.errors import DimensionError, InvalidInputError, NonFiniteError
from velox.packed import pack_upper, unpack_upper
from velox.posterior import REFRESH_EVERY, UserPosterior, closed_form_mean
from velox.state_codec import decode_state, encode_state


def _batch(seed: int, dim: int = 5, lam: float = 1.5) -> tuple[np.ndarray, ...]:
    """Features, rewards and prior mean of a batch head's training events and later ones."""
    rng = np.random.default_rng(seed)
    early, later = rng.normal(size=(30, dim)), rng.normal(size=(REFRESH_EVERY + 37, dim))
    truth = rng.normal(size=dim)
    r_early = early @ truth + 0.3 * rng.normal(size=30)
    r_later = later @ truth + 0.3 * rng.normal(size=len(later))
    return early, r_early, later, r_later, rng.normal(size=dim)


def test_batch_precision_plus_later_events_equals_the_ridge_over_all_events() -> None:
    lam = 1.5
    early, r_early, later, r_later, prior = _batch(7, lam=lam)
    w0 = closed_form_mean(prior, lam, early, r_early)
    precision = lam * np.eye(5) + early.T @ early
    posterior = UserPosterior.from_precision(w0, precision, lam, noise_std=0.4)
    np.testing.assert_array_equal(posterior.mean(), w0)
    for x, r in zip(later, r_later, strict=True):
        posterior.update(x, float(r))
    everything = closed_form_mean(prior, lam, np.vstack([early, later]), np.r_[r_early, r_later])
    np.testing.assert_allclose(posterior.mean(), everything, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(posterior.precision(), precision + later.T @ later, rtol=1e-12)
    b = lam * prior + early.T @ r_early + later.T @ r_later
    np.testing.assert_allclose(posterior.statistic_b(), b, rtol=1e-10, atol=1e-12)
    # The predictive std is the ridge's: noise_std * sqrt(x^T A^-1 x).
    inverse = np.linalg.inv(precision + later.T @ later)
    expected = 0.4 * np.sqrt(np.einsum("ij,jk,ik->i", later[:3], inverse, later[:3]))
    np.testing.assert_allclose(posterior.std(later[:3]), expected, rtol=1e-9)
    assert posterior.count == len(later) and posterior.lam == lam


def test_an_isotropic_precision_is_the_ordinary_prior() -> None:
    carried = UserPosterior.from_precision([1.0, -2.0, 0.5], 3.0 * np.eye(3), lam=3.0)
    plain = UserPosterior.prior([1.0, -2.0, 0.5], lam=3.0)
    for posterior in (carried, plain):
        posterior.update([1.0, 2.0, -1.0], 0.7)
    np.testing.assert_allclose(carried.mean(), plain.mean(), rtol=1e-14)
    np.testing.assert_allclose(carried.precision(), plain.precision(), rtol=1e-14)


def test_the_floor_is_certified_and_at_least_about_lambda() -> None:
    early, *_ = _batch(3)
    precision = 1.5 * np.eye(5) + early.T @ early
    posterior = UserPosterior.from_precision(np.zeros(5), precision, lam=1.5)
    smallest = float(np.linalg.eigvalsh(precision)[0])
    assert 1.5 - 1e-6 * np.trace(precision) <= posterior.precision_floor <= smallest


def test_a_carried_prior_survives_the_state_codec_exactly() -> None:
    early, r_early, later, r_later, prior = _batch(5)
    w0 = closed_form_mean(prior, 1.5, early, r_early)
    posterior = UserPosterior.from_precision(w0, 1.5 * np.eye(5) + early.T @ early, lam=1.5)
    posterior.update(later[0], float(r_later[0]))
    decoded = decode_state(encode_state(posterior))
    for mine, theirs in zip(posterior.packed_parts(), decoded.packed_parts(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert (decoded.count, decoded.lam, decoded.precision_floor) == (
        1,
        1.5,
        posterior.precision_floor,
    )


def test_refuses_a_precision_that_is_not_positive_definite() -> None:
    with pytest.raises(InvalidInputError):
        UserPosterior.from_precision([0.0, 0.0], [[2.0, 3.0], [3.0, 2.0]], lam=1.0)
    with pytest.raises(InvalidInputError):
        UserPosterior.from_precision([0.0, 0.0], np.zeros((2, 2)), lam=1.0)
    with pytest.raises(DimensionError):
        UserPosterior.from_precision([0.0, 0.0], np.eye(3), lam=1.0)
    with pytest.raises(NonFiniteError):
        UserPosterior.from_precision([0.0, 0.0], [[1.0, np.nan], [np.nan, 1.0]], lam=1.0)


def test_a_rounded_gram_matrix_slightly_below_lambda_still_gets_a_floor() -> None:
    # A rank-deficient Gram matrix rounded to float32 can have eigenvalues a little below 0.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 4)) * 30.0
    gram = (x.T @ x).astype(np.float32).astype(np.float64)
    gram -= 1e-4 * np.eye(4)  # as if rounding had pushed an eigenvalue below zero
    posterior = UserPosterior.from_precision(np.ones(4), 0.5 * np.eye(4) + gram, lam=0.5)
    assert 0.0 < posterior.precision_floor <= float(np.linalg.eigvalsh(0.5 * np.eye(4) + gram)[0])


def test_packing_is_the_state_codec_order_and_round_trips() -> None:
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(4, 6, 6))
    grams = rows @ rows.transpose(0, 2, 1)
    np.testing.assert_array_equal(unpack_upper(pack_upper(grams), 6), grams)
    posterior = UserPosterior.from_precision(np.zeros(6), grams[0] + np.eye(6), lam=1.0)
    np.testing.assert_array_equal(posterior.packed_parts()[0], pack_upper(grams[0] + np.eye(6)))
    with pytest.raises(DimensionError):
        unpack_upper(np.zeros(5), 3)
