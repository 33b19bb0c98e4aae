"""Self-normalized inverse propensity scoring (Swaminathan & Joachims 2015)."""

from __future__ import annotations

from numpy.typing import ArrayLike

from velox.ope.base import Estimate, importance_weights, kish_ess, require_rows
from velox.ope.bootstrap import ratio_estimate


def snips(
    propensity: ArrayLike,
    target_probability: ArrayLike,
    reward: ArrayLike,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Σ w·r / Σ w with w = π/μ: slightly biased, much lower variance than IPS for large weights.

    >>> est = snips([0.5, 0.25], [1.0, 0.5], [1.0, 0.0], n_boot=10)
    >>> est.value
    0.5
    """
    rewards = require_rows(reward)
    weights = importance_weights(propensity, target_probability, rewards.shape[0])
    return ratio_estimate(
        "snips",
        weights * rewards,
        weights,
        kish_ess(weights),
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
    )
