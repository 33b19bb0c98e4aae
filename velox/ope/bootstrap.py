"""Seeded nonparametric bootstrap for estimators that are ratios of per-row sums.

Every estimator in `velox.ope` is Σ aᵢ / Σ bᵢ over logged rows (IPS and DR: bᵢ = 1; SNIPS:
bᵢ = wᵢ; replay: bᵢ = 1[match]), so one resampler serves all of them: rows are drawn with
replacement, the ratio is recomputed per resample, and the percentile interval is returned.
Resamples are processed in chunks so memory stays bounded for long logs.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from velox.errors import InvalidInputError
from velox.ope.base import Estimate

_CHUNK_CELLS = 2_000_000


def bootstrap_ratio_ci(
    numerator: NDArray[np.float64],
    denominator: NDArray[np.float64] | None = None,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of Σ numerator / Σ denominator (Σ 1 when None) over resampled rows.

    Resamples whose denominator sums to zero (e.g. replay with no match) are dropped; when
    all are, the interval is (nan, nan).
    """
    if n_boot < 1:
        raise InvalidInputError(f"n_boot must be at least 1, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise InvalidInputError(f"confidence must lie in (0, 1), got {confidence}")
    n = numerator.shape[0]
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot, dtype=np.float64)
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        picks = rng.integers(0, n, size=(rows, n))
        top = numerator[picks].sum(axis=1)
        bottom = np.full(rows, float(n)) if denominator is None else denominator[picks].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            stats[start : start + rows] = np.where(bottom != 0.0, top / bottom, np.nan)
    valid = stats[np.isfinite(stats)]
    if valid.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(valid, [tail, 1.0 - tail])
    return float(low), float(high)


def ratio_estimate(
    estimator: str,
    numerator: NDArray[np.float64],
    denominator: NDArray[np.float64] | None,
    ess: float,
    *,
    n_boot: int,
    confidence: float,
    seed: int,
) -> Estimate:
    """The Estimate of Σ numerator / Σ denominator with its bootstrap interval."""
    n = numerator.shape[0]
    bottom = float(n) if denominator is None else float(denominator.sum())
    value = float(numerator.sum()) / bottom if bottom != 0.0 else float("nan")
    low, high = bootstrap_ratio_ci(
        numerator, denominator, n_boot=n_boot, confidence=confidence, seed=seed
    )
    return Estimate(estimator, value, low, high, confidence, ess, n)
