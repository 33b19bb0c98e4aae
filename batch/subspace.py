"""How well learned item features recover a planted item subspace.

ALS factors are identified only up to an invertible linear map, so comparing them entry by
entry is meaningless. The sound measure is a regression: how much of the planted item
factors (and item bias) a linear map of the learned features explains,

    R^2 = 1 - ||T - F B||^2 / ||T - mean(T)||^2,   B = argmin ||T - F B||^2,

with F the learned features plus an intercept column and T the planted targets. R^2 = 1 iff
the planted subspace lies in the span of the learned features; it is invariant to any
invertible transform of F (so to ALS's rotation and scaling).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from batch.errors import TrainingError


def subspace_r2(planted: NDArray[np.float64], learned: NDArray[np.floating[Any]]) -> float:
    """Pooled R^2 of regressing `planted` (n, k) on `learned` (n, d) plus an intercept."""
    target = np.asarray(planted, dtype=np.float64)
    if target.ndim == 1:
        target = target[:, None]
    design = np.hstack([np.asarray(learned, dtype=np.float64), np.ones((len(target), 1))])
    if design.shape[0] != target.shape[0] or design.shape[0] <= design.shape[1]:
        raise TrainingError(
            f"need more items than features to measure recovery: {design.shape}, {target.shape}"
        )
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = target - design @ coef
    total = target - target.mean(axis=0)
    return float(1.0 - np.sum(residual**2) / np.sum(total**2))
