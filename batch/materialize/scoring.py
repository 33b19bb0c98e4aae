"""Score users against every item and keep each user's top k: numpy on the CPU, torch on CUDA.

The torch backend is `batch.materialize.torch_scorer`.

Both backends compute `W @ X.T` in float64 (the score contract: `dot(features[i], w_u)` with
both sides as float64) over chunks of users, then select each row's k best items ordered by
score descending and, among equal scores, by item row ascending. Items arrive sorted by
item_id, so "row ascending" is the table's tie order "item_id ascending".

A top-k selection (numpy's `argpartition`, torch's `topk`) picks arbitrarily among items tied
with the k-th score. So each row selects k + 1 items: when the (k+1)-th score is below the k-th,
the first k are exactly the k best; the rare rows where the two are equal are selected again
with a full stable sort. This costs no extra pass over the scores.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from batch.materialize.errors import DeviceUnavailableError

DEVICES = ("auto", "cpu", "cuda")
CPU_CHUNK_SCORES = 1 << 22  # scores per chunk on the CPU: 32 MiB of float64


class TopRows(NamedTuple):
    """Each user's k best items: item rows (int32) and their scores (float64), both (u, k)."""

    items: NDArray[np.int32]
    scores: NDArray[np.float64]


def exact_top_row(scores: NDArray[np.float64], k: int) -> NDArray[np.int64]:
    """The k best positions of one row: score descending, then position ascending."""
    order: NDArray[np.int64] = np.argsort(-scores, kind="stable")[:k]
    return order


class Scorer(ABC):
    """Scores chunks of users against a fixed item matrix and keeps each user's top k."""

    def __init__(self, items: NDArray[np.float64], k: int, chunk_scores: int) -> None:
        if not 1 <= k <= items.shape[0]:
            raise ValueError(f"k must be in 1..{items.shape[0]}, got {k}")
        self.k = k
        self.n_items = int(items.shape[0])
        self.chunk_users = max(1, chunk_scores // max(self.n_items, 1))

    def top(self, weights: NDArray[np.float64]) -> TopRows:
        """The top k of every row of `weights` (u, d), scored in chunks of users."""
        if self.n_items > np.iinfo(np.int32).max:
            raise ValueError(f"{self.n_items} items do not fit int32 item rows")
        out = self._host_result(weights.shape[0])
        if weights.shape[0]:
            self._fill(weights, out)
        return out

    def _host_result(self, n_users: int) -> TopRows:
        return TopRows(np.empty((n_users, self.k), np.int32), np.empty((n_users, self.k)))

    @abstractmethod
    def _fill(self, weights: NDArray[np.float64], out: TopRows) -> None:
        """Write the top k of every row of `weights` into `out`."""


class NumpyScorer(Scorer):
    """The CPU backend: one BLAS product per chunk, `argpartition`, then an exact order."""

    def __init__(self, items: NDArray[np.float64], k: int, chunk_scores: int = CPU_CHUNK_SCORES):
        super().__init__(items, k, chunk_scores)
        self._items_t = np.ascontiguousarray(items.T, dtype=np.float64)

    def _fill(self, weights: NDArray[np.float64], out: TopRows) -> None:
        for start in range(0, weights.shape[0], self.chunk_users):
            rows = slice(start, start + self.chunk_users)
            self._top_chunk(weights[rows], TopRows(out.items[rows], out.scores[rows]))

    def _top_chunk(self, weights: NDArray[np.float64], out: TopRows) -> None:
        scores = weights @ self._items_t
        k = self.k
        if k == self.n_items:
            picked = np.argsort(-scores, axis=1, kind="stable")
        else:
            partition = np.argpartition(-scores, k, axis=1)
            picked = partition[:, :k]
            values = np.take_along_axis(scores, picked, axis=1)
            after = np.take_along_axis(scores, partition[:, k : k + 1], axis=1)[:, 0]
            for row in np.flatnonzero(values.min(axis=1) == after):
                picked[row] = exact_top_row(scores[row], k)
            values = np.take_along_axis(scores, picked, axis=1)
            picked = np.take_along_axis(picked, np.lexsort((picked, -values), axis=1), axis=1)
        out.items[:] = picked
        out.scores[:] = np.take_along_axis(scores, picked, axis=1)


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device: str) -> str:
    """`auto` → `cuda` when torch sees a card, else `cpu`; `cuda` without one is an error."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device == "cuda" and not cuda_available():
        raise DeviceUnavailableError(
            "--device cuda: torch is not installed or sees no CUDA device (use --device cpu)"
        )
    return device


def make_scorer(items: NDArray[np.float64], k: int, device: str) -> Scorer:
    """The backend for a resolved device: numpy for `cpu`, torch for `cuda`."""
    if device == "cpu":
        return NumpyScorer(items, k)
    from batch.materialize.torch_scorer import TorchScorer

    return TorchScorer(items, k, device)
