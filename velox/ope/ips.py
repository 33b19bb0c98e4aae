"""Inverse propensity scoring (Horvitz & Thompson 1952) for off-policy evaluation."""

from __future__ import annotations

from numpy.typing import ArrayLike

from velox.ope.base import Estimate, importance_weights, kish_ess, require_rows
from velox.ope.bootstrap import ratio_estimate


def ips(
    propensity: ArrayLike,
    target_probability: ArrayLike,
    reward: ArrayLike,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Mean of (π(a|x) / μ(a|x)) · r: unbiased whenever μ > 0 wherever π > 0.

    >>> est = ips([0.5, 0.5], [1.0, 0.0], [1.0, 0.0], n_boot=10)
    >>> est.value, est.ess
    (1.0, 1.0)
    """
    rewards = require_rows(reward)
    weights = importance_weights(propensity, target_probability, rewards.shape[0])
    return ratio_estimate(
        "ips",
        weights * rewards,
        None,
        kish_ess(weights),
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
    )
