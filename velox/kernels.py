"""The selection hot path's loops, compiled where the extension was built, else numpy.

Why compiled: inside a loaded server each numpy call of a selection costs several times its
tight-loop time (bench/bench_select_in_server.py), and the exact top-k of each row (partition,
sort, gather, tie check: about ten calls) and the Monte-Carlo slot wins (one `maximum` per
slot) are many small calls. `velox/_kernels.c` does each in one pass over the data: the top-k
with a heap of the k best seen (ties to the lower index, as `velox.scoring.top_k`), the wins
as a running maximum from the last candidate up. The numpy versions here give the same
answers (tests/velox/test_kernels.py) and serve where the extension is missing (no compiler
at install time) or `VELOX_NO_KERNELS=1` is set.
"""

from __future__ import annotations

import os
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

__all__ = ["COMPILED", "slot_wins", "top_k_rows_f32"]


def _load() -> ModuleType | None:
    if os.environ.get("VELOX_NO_KERNELS") == "1":
        return None
    try:
        from velox import _kernels
    except ImportError:
        return None
    return _kernels


_compiled = _load()
COMPILED = _compiled is not None
"""Whether the compiled loops serve (the extension was built and not switched off)."""


def top_k_rows_f32(scores: NDArray[np.float32], k: int) -> NDArray[np.intp]:
    """The k (1 <= k <= m) best indices of each row of finite float32 `scores` (n, m), best
    first, ties to the lower index."""
    n, m = scores.shape
    if _compiled is None:
        return top_k_rows_numpy(scores, k)
    out = np.empty((n, k), dtype=np.int64)
    _compiled.top_k_rows_f32(np.ascontiguousarray(scores), n, m, k, out)
    return out.astype(np.intp, copy=False)


def top_k_rows_numpy(scores: NDArray[np.floating], k: int) -> NDArray[np.intp]:
    """`top_k_rows_f32` with numpy: a stable sort of each row by descending score."""
    order: NDArray[np.intp] = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order


def slot_wins(draws: NDArray[np.float64], n_chosen: int) -> NDArray[np.int64]:
    """For each request (b, c candidates, d draws) and each of the first `n_chosen` (>= 1)
    candidates, the draws in which it beats every candidate after it."""
    if _compiled is None:
        return slot_wins_numpy(draws, n_chosen)
    b, c, d = draws.shape
    out = np.empty((b, n_chosen), dtype=np.int64)
    _compiled.slot_wins(np.ascontiguousarray(draws, dtype=np.float64), b, c, d, n_chosen, out)
    return out


def slot_wins_numpy(draws: NDArray[np.float64], n_chosen: int) -> NDArray[np.int64]:
    """`slot_wins` with numpy: the best of the later candidates, built from the bottom up."""
    later = np.empty((draws.shape[0], n_chosen, draws.shape[2]))
    if draws.shape[1] > n_chosen:
        draws[:, n_chosen:].max(axis=1, out=later[:, -1])
    else:
        later[:, -1] = -np.inf
    for j in range(n_chosen - 1, 0, -1):
        np.maximum(later[:, j], draws[:, j], out=later[:, j - 1])
    wins: NDArray[np.int64] = (draws[:, :n_chosen] > later).sum(axis=2, dtype=np.int64)
    return wins
