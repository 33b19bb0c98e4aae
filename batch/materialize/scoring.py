"""Score users against every item and keep each user's top k: numpy on the CPU, torch on CUDA.

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
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import NDArray

from batch.materialize.errors import DeviceUnavailableError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")
CPU_CHUNK_SCORES = 1 << 22  # scores per chunk on the CPU: 32 MiB of float64
CUDA_CHUNK_SCORES = 1 << 28  # on a card: 2 GiB of float64 scores per chunk


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
        out = TopRows(
            np.empty((weights.shape[0], self.k), np.int32),
            np.empty((weights.shape[0], self.k), np.float64),
        )
        for start in range(0, weights.shape[0], self.chunk_users):
            rows = slice(start, start + self.chunk_users)
            self._top_chunk(weights[rows], TopRows(out.items[rows], out.scores[rows]))
        return out

    @abstractmethod
    def _top_chunk(self, weights: NDArray[np.float64], out: TopRows) -> None:
        """Write the top k of one chunk of users into `out` (views of the result)."""


class NumpyScorer(Scorer):
    """The CPU backend: one BLAS product per chunk, `argpartition`, then an exact order."""

    def __init__(self, items: NDArray[np.float64], k: int, chunk_scores: int = CPU_CHUNK_SCORES):
        super().__init__(items, k, chunk_scores)
        self._items_t = np.ascontiguousarray(items.T, dtype=np.float64)

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


class TorchScorer(Scorer):
    """The torch backend (CUDA, or the CPU for tests): the same result as `NumpyScorer`."""

    def __init__(
        self,
        items: NDArray[np.float64],
        k: int,
        device: str = "cuda",
        chunk_scores: int = CUDA_CHUNK_SCORES,
    ) -> None:
        import torch

        super().__init__(items, k, chunk_scores)
        self._torch = torch
        self.device = torch.device(device)
        self._items_t = (
            torch.from_numpy(np.ascontiguousarray(items, dtype=np.float64)).to(self.device).T
        )

    def _top_chunk(self, weights: NDArray[np.float64], out: TopRows) -> None:
        torch = self._torch
        users = torch.from_numpy(np.ascontiguousarray(weights)).to(self.device, non_blocking=True)
        scores = users @ self._items_t
        k = self.k
        if k == self.n_items:
            picked = torch.sort(scores, dim=1, descending=True, stable=True).indices
        else:
            values, picked = torch.topk(scores, k + 1, dim=1, sorted=True)
            tied = (values[:, k - 1] == values[:, k]).nonzero().flatten()
            picked = picked[:, :k]
            if len(tied):
                exact = torch.sort(scores[tied], dim=1, descending=True, stable=True).indices
                picked[tied] = exact[:, :k]
            picked = _order_rows(scores, picked)
        # Straight into the result's rows: no per-chunk arrays, no concatenation on the host.
        torch.from_numpy(out.items).copy_(picked.to(torch.int32))
        torch.from_numpy(out.scores).copy_(scores.gather(1, picked))


def _order_rows(scores: torch.Tensor, picked: torch.Tensor) -> torch.Tensor:
    """Order each row's picked items by score descending, then item row ascending."""
    picked = picked.sort(dim=1).values
    by_score = scores.gather(1, picked).sort(dim=1, descending=True, stable=True).indices
    ordered: torch.Tensor = picked.gather(1, by_score)
    return ordered


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
    return TorchScorer(items, k, device)
