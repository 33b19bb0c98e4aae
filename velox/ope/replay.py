"""The replay method (Li, Chu, Langford & Wang, WSDM 2011) for evaluating learning policies.

Replay walks a log collected by a *uniformly random* logging policy in order, asks the target
policy for its choice on each logged context, keeps only the rows where it matches the logged
action (letting a learning policy learn from exactly those rows) and averages their rewards.
With uniform logging over K candidates the kept rows are an unbiased sample of what the target
would have met on-policy, about one row in K. The sequential walk belongs to the caller (it
needs the policy and its state); this function scores the walk's outcome.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from velox.errors import DimensionError
from velox.ope.base import Estimate, require_rows
from velox.ope.bootstrap import ratio_estimate


def replay(
    logged_action: ArrayLike,
    target_action: ArrayLike,
    reward: ArrayLike,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Mean reward over rows where the target chose the logged action; ESS = matched rows.

    >>> est = replay([3, 1, 2], [3, 0, 2], [1.0, 1.0, 0.0], n_boot=10)
    >>> est.value, est.ess
    (0.5, 2.0)
    """
    rewards = require_rows(reward)
    logged = np.asarray(logged_action)
    target = np.asarray(target_action)
    if logged.shape != rewards.shape or target.shape != rewards.shape:
        raise DimensionError(
            f"logged_action {logged.shape}, target_action {target.shape} and reward "
            f"{rewards.shape} must be vectors of one length"
        )
    matched = (logged == target).astype(np.float64)
    return ratio_estimate(
        "replay",
        matched * rewards,
        matched,
        float(matched.sum()),
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
    )
