"""Scores under the score contract and exact top-K selection.

The score contract: ``score(u, i) = dot(items.features[i], w_u)``. Features are float32, so the
product is taken in float32 (``features @ float32(w)``, one sgemv: a float64 product would
first convert the whole catalog, ~8x slower) and returned as float64. Anyone recomputing a
score from a snapshot in float64 agrees to about 1e-6 relative.

`top_k_rows` does the same for each row of a matrix (one request's scores per row), float32
rows in one compiled pass each (`velox.kernels`), others with one partition of the whole
matrix; `score_many` scores several weight vectors in one product.

`top_k` is exact: the k highest scores, in descending order, ties broken by the lower index.
For large arrays it first takes a threshold from a strided sample (the sample's k-th largest
value; at least k items of the full array reach it, so nothing can be missed), keeps the items
at or above it (one vectorised pass), and partitions only those.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from velox.catalog import ItemMatrix
from velox.errors import DimensionError, InvalidInputError
from velox.kernels import COMPILED, top_k_rows_f32

__all__ = ["score_items", "score_many", "score_rows", "top_k", "top_k_rows"]

_SAMPLING_MIN_N = 4096


def _weights32(items: ItemMatrix, w: ArrayLike) -> NDArray[np.float32]:
    """`w` as float32 after checking it matches the catalog's dimension."""
    vec = np.asarray(w, dtype=np.float32)
    if vec.shape != (items.dim,):
        raise DimensionError(f"w must have shape ({items.dim},), got {vec.shape}")
    return vec


def score_items(items: ItemMatrix, w: ArrayLike) -> NDArray[np.float64]:
    """Scores of every item, `features @ w` (the score contract), as float64."""
    scores: NDArray[np.float64] = (items.features @ _weights32(items, w)).astype(np.float64)
    return scores


def score_rows(items: ItemMatrix, w: ArrayLike, rows: NDArray[np.intp]) -> NDArray[np.float64]:
    """Scores of the items `rows` only, computed exactly as `score_items` computes them."""
    scores: NDArray[np.float64] = (items.features[rows] @ _weights32(items, w)).astype(np.float64)
    return scores


def _sorted_prefix(scores: NDArray[np.floating], k: int) -> NDArray[np.intp]:
    """Indices of the first k items in (descending score, ascending index) order."""
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    candidates: NDArray[np.intp] | None = None
    if n >= _SAMPLING_MIN_N and 8 * k < n:
        sample = scores[:: max(1, n // max(8 * k, math.isqrt(4 * n * k)))]
        if sample.shape[0] >= k:
            threshold = np.partition(sample, sample.shape[0] - k)[sample.shape[0] - k]
            candidates = np.flatnonzero(scores >= threshold)
    values = scores if candidates is None else scores[candidates]
    m = values.shape[0]
    if m > k:
        # Every value equal to the k-th largest is kept, so ties at the boundary are broken by
        # index below rather than arbitrarily by the partition.
        kth = np.partition(values, m - k)[m - k]
        keep = np.flatnonzero(values >= kth)
        candidates = keep if candidates is None else candidates[keep]
        values = values[keep]
    elif candidates is None:
        candidates = np.arange(n, dtype=np.intp)
    order = np.argsort(-values, kind="stable")[:k]
    result: NDArray[np.intp] = candidates[order]
    return result


def top_k(
    scores: NDArray[np.floating],
    k: int,
    *,
    exclude: NDArray[np.intp] | None = None,
    allowed: NDArray[np.bool_] | None = None,
) -> NDArray[np.intp]:
    """Indices of the k best eligible scores, best first (ties: lower index first).

    Excluded and disallowed items are never returned; fewer than k come back when fewer are
    eligible. Scores must be finite.

    >>> top_k(np.array([0.5, 2.0, 2.0, -1.0]), 3, exclude=np.array([1]))
    array([2, 0, 3])
    """
    if k < 0:
        raise InvalidInputError(f"k must be >= 0, got {k}")
    n = scores.shape[0]
    drop = None if exclude is None or len(exclude) == 0 else np.asarray(exclude, dtype=np.intp)
    if drop is not None and (drop.min() < 0 or drop.max() >= n):
        raise InvalidInputError(f"exclude holds an index outside [0, {n})")
    if allowed is not None:
        if allowed.shape != (n,):
            raise DimensionError(f"allowed must have shape ({n},), got {allowed.shape}")
        mask = allowed
        if drop is not None:
            mask = allowed.copy()
            mask[drop] = False
        eligible = np.flatnonzero(mask)
        chosen: NDArray[np.intp] = eligible[_sorted_prefix(scores[eligible], k)]
        return chosen
    if drop is None:
        return _sorted_prefix(scores, k)
    drop = np.unique(drop)
    # The first k + |drop| items of the full order contain the first k eligible ones.
    prefix = _sorted_prefix(scores, k + drop.shape[0])
    kept: NDArray[np.intp] = prefix[~np.isin(prefix, drop)][:k]
    return kept


def score_many(items: ItemMatrix, weights: NDArray[np.floating]) -> NDArray[np.float32]:
    """Scores of every item under each row of `weights` (n, d): one float32 product, (n, items).

    Each row agrees with `score_items` of that row to float32 rounding (a matrix product may
    sum in another order than a matrix-vector product).
    """
    if weights.ndim != 2 or weights.shape[1] != items.dim:
        raise DimensionError(f"weights must have shape (n, {items.dim}), got {weights.shape}")
    scores: NDArray[np.float32] = weights.astype(np.float32) @ items.features.T
    return scores


def top_k_rows(scores: NDArray[np.floating], k: int) -> NDArray[np.intp]:
    """`top_k(row, k)` of every row of `scores` (n, m), as one (n, min(k, m)) array.

    One partition of the matrix finds each row's k best; a row where the k-th best value is
    tied with an item left out goes through `top_k` instead, so ties still go to the lower
    index exactly as `top_k` breaks them.
    """
    if k < 0:
        raise InvalidInputError(f"k must be >= 0, got {k}")
    n, m = scores.shape
    k = min(k, m)
    if k == 0 or n == 0:
        return np.empty((n, k), dtype=np.intp)
    if COMPILED and scores.dtype == np.float32:
        return top_k_rows_f32(scores, k)  # one heap pass per row (velox/kernels.py)
    if k < m:
        best = np.argpartition(scores, m - k, axis=1)[:, m - k :]
        best.sort(axis=1)  # ascending index, so the stable sort below breaks ties by index
    else:
        best = np.broadcast_to(np.arange(m), (n, m))
    flat = scores.reshape(-1)
    offsets = np.arange(0, n * m, m)[:, None]
    values = flat[best + offsets]
    order = np.argsort(-values, axis=1, kind="stable")
    chosen: NDArray[np.intp] = best[np.arange(n)[:, None], order]
    if k < m:
        kth = values.min(axis=1, keepdims=True)
        if np.count_nonzero(scores >= kth) > n * k:  # some row has a tie at its boundary
            for row in np.flatnonzero(np.count_nonzero(scores >= kth, axis=1) > k):
                chosen[row] = _sorted_prefix(scores[row], k)
    return chosen
