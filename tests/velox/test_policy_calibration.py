"""The calibrated default scale of Thompson sampling (velox.policies.calibration)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from velox.errors import DimensionError, InvalidInputError
from velox.policies import ThompsonSampling, calibration, make_policy
from velox.policies.calibration import calibrated_thompson_scale


def test_docstring_example_runs() -> None:
    result = doctest.testmod(calibration)
    assert result.attempted > 0 and result.failed == 0


def test_scale_is_the_ratio_of_population_to_prior_spread() -> None:
    # Users' weights spread N(0, tau² I) and items are unit vectors: every score spreads with
    # variance tau², the prior's with noise²/λ, so the scale is tau · sqrt(λ) / noise.
    rng = np.random.default_rng(0)
    features = np.eye(4)
    tau, lam, noise = 0.2, 4.0, 0.5
    weights = rng.normal(0.0, tau, (200_000, 4))
    scale = calibrated_thompson_scale(features, weights, lam=lam, noise_std=noise)
    # 1000 users are sampled (MAX_USERS): the pooled variance is within ~2 % (1 sd).
    assert scale == pytest.approx(tau * np.sqrt(lam) / noise, rel=0.04)
    # A population wider than the prior never widens exploration past plain Thompson sampling.
    assert calibrated_thompson_scale(features, 10 * weights, lam=lam, noise_std=noise) == 1.0
    # Identical users: nothing to explore between them.
    same = np.ones((10, 4))
    assert calibrated_thompson_scale(features, same, lam=lam, noise_std=noise) == 0.0


def test_scale_refuses_nonsense() -> None:
    with pytest.raises(DimensionError):
        calibrated_thompson_scale(np.eye(3), np.ones((5, 4)), lam=1.0, noise_std=1.0)
    with pytest.raises(InvalidInputError):
        calibrated_thompson_scale(np.eye(3), np.ones((5, 3)), lam=0.0, noise_std=1.0)


def test_bare_thompson_takes_the_calibrated_scale_and_the_knob_stays() -> None:
    calibrated = make_policy("thompson", seed=1, thompson_scale=0.3)
    assert isinstance(calibrated, ThompsonSampling) and calibrated.scale == 0.3
    assert calibrated.spec == "thompson:0.3"  # the decision log records the scale used
    explicit = make_policy("thompson:1.0", seed=1, thompson_scale=0.3)
    assert isinstance(explicit, ThompsonSampling) and explicit.scale == 1.0
    plain = make_policy("thompson", seed=1)
    assert isinstance(plain, ThompsonSampling) and plain.scale == 1.0
