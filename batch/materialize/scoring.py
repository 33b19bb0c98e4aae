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
from collections.abc import Iterator
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


Blocks = Iterator[tuple[slice, TopRows]]
"""Consecutive blocks of users' top rows: the users' rows of the call, and their result."""


def exact_top_row(scores: NDArray[np.float64], k: int) -> NDArray[np.int64]:
    """The k best positions of one row: score descending, then position ascending."""
    order: NDArray[np.int64] = np.argsort(-scores, kind="stable")[:k]
    return order


class Scorer(ABC):
    """Scores chunks of users against a fixed item matrix and keeps each user's top k."""

    def __init__(self, items: NDArray[np.float64], k: int, chunk_scores: int) -> None:
        if not 1 <= k <= items.shape[0]:
            raise ValueError(f"k must be in 1..{items.shape[0]}, got {k}")
        if items.shape[0] > np.iinfo(np.int32).max:
            raise ValueError(f"{items.shape[0]} items do not fit int32 item rows")
        self.k = k
        self.n_items = int(items.shape[0])
        self.chunk_users = max(1, chunk_scores // max(self.n_items, 1))

    def top(self, weights: NDArray[np.float64]) -> TopRows:
        """The top k of every row of `weights` (u, d), in new host arrays."""
        n_users = weights.shape[0]
        out = TopRows(np.empty((n_users, self.k), np.int32), np.empty((n_users, self.k)))
        for rows, block in self.blocks(weights):
            out.items[rows] = block.items
            out.scores[rows] = block.scores
        return out

    @abstractmethod
    def blocks(self, weights: NDArray[np.float64]) -> Blocks:
        """The top k of the rows of `weights`, block after block of users, in order.

        A block's arrays may be reused for a later block: read them before asking for the next.
        """


class NumpyScorer(Scorer):
    """The CPU backend: one BLAS product per chunk, `argpartition`, then an exact order."""

    def __init__(self, items: NDArray[np.float64], k: int, chunk_scores: int = CPU_CHUNK_SCORES):
        super().__init__(items, k, chunk_scores)
        self._items_t = np.ascontiguousarray(items.T, dtype=np.float64)

    def blocks(self, weights: NDArray[np.float64]) -> Blocks:
        """One block per chunk of users (new arrays each)."""
        for start in range(0, weights.shape[0], self.chunk_users):
            rows = slice(start, min(start + self.chunk_users, weights.shape[0]))
            yield rows, self._top_chunk(weights[rows])

    def _top_chunk(self, weights: NDArray[np.float64]) -> TopRows:
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
        return TopRows(picked.astype(np.int32), np.take_along_axis(scores, picked, axis=1))


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


def make_scorer(items: NDArray[np.float64], k: int, device: str, part_users: int = 0) -> Scorer:
    """The backend for a resolved device: numpy for `cpu`, torch for `cuda` (its host
    buffers sized for calls of `part_users` users)."""
    if device == "cpu":
        return NumpyScorer(items, k)
    from batch.materialize.torch_scorer import TorchScorer

    return TorchScorer(items, k, device, part_users=part_users)
