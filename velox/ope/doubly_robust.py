"""Doubly robust off-policy evaluation (Dudík, Langford & Li 2011)."""

from __future__ import annotations

from numpy.typing import ArrayLike

from velox.ope.base import Estimate, finite_vector, importance_weights, kish_ess, require_rows
from velox.ope.bootstrap import ratio_estimate


def doubly_robust(
    propensity: ArrayLike,
    target_probability: ArrayLike,
    reward: ArrayLike,
    reward_estimate: ArrayLike,
    target_reward_estimate: ArrayLike,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Mean of V̂(x) + (π/μ)·(r - r̂(x, a)): unbiased if either μ or the reward model is right.

    `reward_estimate` is the reward model's r̂(x, a) for the logged action;
    `target_reward_estimate` is V̂(x) = Σ_a π(a|x) r̂(x, a), the model's value of the target
    policy on the row's context (the direct-method term).

    >>> est = doubly_robust([0.5], [1.0], [1.0], [0.8], [0.9], n_boot=10)
    >>> round(est.value, 12)
    1.3
    """
    rewards = require_rows(reward)
    n = rewards.shape[0]
    weights = importance_weights(propensity, target_probability, n)
    predicted = finite_vector("reward_estimate", reward_estimate, n)
    direct = finite_vector("target_reward_estimate", target_reward_estimate, n)
    terms = direct + weights * (rewards - predicted)
    return ratio_estimate(
        "dr", terms, None, kish_ess(weights), n_boot=n_boot, confidence=confidence, seed=seed
    )
