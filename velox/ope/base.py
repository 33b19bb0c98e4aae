"""The result every off-policy estimator returns, and the input checks they share.

All estimators estimate the same quantity: the expected reward per decision that the target
policy would have earned on the logged contexts. Their inputs are one row per logged decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from velox.errors import DimensionError, InvalidInputError, NonFiniteError


@dataclass(frozen=True)
class Estimate:
    """A policy-value estimate with its bootstrap confidence interval and effective sample size."""

    estimator: str
    value: float
    ci_low: float
    ci_high: float
    confidence: float
    ess: float
    n: int

    def covers(self, value: float) -> bool:
        """Whether `value` lies inside the confidence interval (ends included)."""
        return self.ci_low <= value <= self.ci_high

    def as_dict(self) -> dict[str, float | int | str]:
        """The estimate as a JSON-ready mapping."""
        return {
            "estimator": self.estimator,
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": self.confidence,
            "ess": self.ess,
            "n": self.n,
        }


def kish_ess(weights: NDArray[np.float64]) -> float:
    """Kish's effective sample size (Σw)² / Σw²; 0 when every weight is zero."""
    total_sq = float(np.dot(weights, weights))
    if total_sq == 0.0:
        return 0.0
    return float(weights.sum()) ** 2 / total_sq


def finite_vector(name: str, values: ArrayLike, n: int | None = None) -> NDArray[np.float64]:
    """`values` as a finite float64 vector (of length `n` when given), or a named error."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise DimensionError(f"{name} must be a vector, got shape {array.shape}")
    if n is not None and array.shape[0] != n:
        raise DimensionError(f"{name} has {array.shape[0]} rows, expected {n}")
    if not np.all(np.isfinite(array)):
        raise NonFiniteError(f"{name} contains NaN or infinity")
    return array


def importance_weights(
    propensity: ArrayLike, target_probability: ArrayLike, n: int
) -> NDArray[np.float64]:
    """π(a|x) / μ(a|x) per row, after checking μ ∈ (0, 1] and π ∈ [0, 1]."""
    logged = finite_vector("propensity", propensity, n)
    target = finite_vector("target_probability", target_probability, n)
    if np.any(logged <= 0.0) or np.any(logged > 1.0):
        raise InvalidInputError("propensity must lie in (0, 1]: a logged action needs μ > 0")
    if np.any(target < 0.0) or np.any(target > 1.0):
        raise InvalidInputError("target_probability must lie in [0, 1]")
    return target / logged


def require_rows(reward: ArrayLike) -> NDArray[np.float64]:
    """The reward vector, which fixes the number of rows; at least one row is required."""
    rewards = finite_vector("reward", reward)
    if rewards.shape[0] == 0:
        raise InvalidInputError("no logged decisions to evaluate")
    return rewards
