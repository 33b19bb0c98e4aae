"""Certified lower bounds on λ_min(A), the smallest eigenvalue of a posterior's precision A.

`UserPosterior.precision_floor` is such a bound: every predictive std is then at most
noise_std·‖x‖/sqrt(floor), which LinUCB uses to prune items without computing their stds. A
bound is proven, not estimated: a Cholesky factorisation of A - mu·I succeeding shows
λ_min(A) > mu.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import blas, lapack  # type: ignore[import-untyped]

__all__ = ["carried_floor", "certified_floor", "factorises"]

FloatArray = NDArray[np.float64]

_POWER_STEPS = 8
_FLOOR_FRACTIONS = (0.9, 0.5)


def factorises(matrix: FloatArray) -> bool:
    """Whether a Cholesky factorisation of `matrix` succeeds (it is positive definite).

    >>> factorises(np.eye(2)), factorises(-np.eye(2))
    (True, False)
    """
    return bool(lapack.dpotrf(matrix, lower=0, clean=0)[1] == 0)


def certified_floor(sqrt_cov: FloatArray, precision: FloatArray, known: float) -> float:
    """A proven lower bound on λ_min(A), or `known` (a bound already proven) if none above it.

    Power iteration on A⁻¹ = S Sᵀ (`sqrt_cov` is S) guesses λ_min(A) from above; a Cholesky
    factorisation of A - mu·I succeeding proves λ_min(A) > mu (less a rounding margin).

    >>> a = np.diag([4.0, 9.0])
    >>> 3.5 < certified_floor(np.diag([0.5, 1 / 3]), a, 1.0) < 4.0
    True
    """
    dim = precision.shape[0]
    direction = np.full(dim, 1.0 / math.sqrt(dim))
    rayleigh = 0.0
    for _ in range(_POWER_STEPS):
        projected = blas.dgemv(1.0, sqrt_cov, direction, trans=1)
        rayleigh = blas.ddot(projected, projected)
        direction = blas.dgemv(1.0 / math.sqrt(rayleigh), sqrt_cov, projected)
        direction /= math.sqrt(blas.ddot(direction, direction))
    margin = 1e-9 * float(np.trace(precision))
    for fraction in _FLOOR_FRACTIONS:
        shift = fraction / rayleigh
        if shift - margin <= known:
            break
        if factorises(precision - shift * np.eye(dim)):
            return shift - margin
    return known


def carried_floor(precision: FloatArray, lam: float, sqrt_cov: FloatArray) -> float:
    """The floor of a carried prior A = λI + G (G a user's Gram matrix, published as float32).

    A factorisation proves λ itself (a full-rank G), or λ less a margin for float32 rounding
    (1e-6 · trace A); only when both fail is one certified from the spectrum (A need not be
    ⪰ λI to be a prior). 0 when nothing positive can be proven.

    >>> carried_floor(np.diag([3.0, 5.0]), 1.0, np.diag([3**-0.5, 5**-0.5]))
    1.0
    """
    margin = 1e-6 * float(np.trace(precision))
    for floor in (lam, lam - margin):
        if floor > 0.0 and factorises(precision - floor * np.eye(precision.shape[0])):
            return floor
    return certified_floor(sqrt_cov, precision, 0.0)
