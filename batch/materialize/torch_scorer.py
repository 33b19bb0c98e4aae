"""The torch scorer (CUDA, or the CPU for tests): `W @ X.T` and top-k on the device.

It gives exactly `NumpyScorer`'s result (see `batch.materialize.scoring`): float64 scores and
items ordered by score descending, then item row ascending. On a card one call is a pipeline
over chunks of users on two streams: while the compute stream scores and selects chunk c, the
copy stream uploads the users of chunk c + 1 and copies chunk c - 1's result to the host. The
exact order is made on the device, and a chunk's one host sync reads which rows hold equal
scores (with real-valued factors, usually none).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from batch.materialize.scoring import Scorer, TopRows

if TYPE_CHECKING:
    import torch

CUDA_CHUNK_SCORES = 1 << 28  # at most 2 GiB of float64 scores per chunk
PIPELINE_CHUNKS = 8  # a big call is cut into at least about this many chunks
PINNED_RESULT_BYTES = 1 << 30  # larger results go to pageable host memory


class TorchScorer(Scorer):
    """The torch backend: the same result as `NumpyScorer`, pipelined on a card."""

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
        self._lanes = _Lanes(torch, self.device)

    def chunk_rows(self, n_users: int) -> int:
        """Users per chunk: at most the score budget, small enough for PIPELINE_CHUNKS chunks."""
        most = self.chunk_users
        return min(most, max(-(-n_users // PIPELINE_CHUNKS), most // PIPELINE_CHUNKS, 1))

    def _host_result(self, n_users: int) -> TopRows:
        # Pinned host memory, which torch caches and hands out again once a result is dropped:
        # the copies from the card run at full speed, and a repeated call (one per part) touches
        # no new pages. On the H100 machine, first-touching the 600 MB result of 10^5 users
        # took 0.13-0.33 s; the card's whole job takes 0.04 s (BENCHMARKS.md).
        if self.device.type != "cuda" or n_users * self.k * 12 > PINNED_RESULT_BYTES:
            return super()._host_result(n_users)
        torch = self._torch
        return TopRows(
            torch.empty((n_users, self.k), dtype=torch.int32, pin_memory=True).numpy(),
            torch.empty((n_users, self.k), dtype=torch.float64, pin_memory=True).numpy(),
        )

    def _fill(self, weights: NDArray[np.float64], out: TopRows) -> None:
        step = self.chunk_rows(weights.shape[0])
        chunks = [slice(s, s + step) for s in range(0, weights.shape[0], step)]
        lanes = self._lanes
        users = lanes.upload(weights[chunks[0]])
        done: _Chunk | None = None
        for index, rows in enumerate(chunks):
            with lanes.computing(users):
                selected = self._select(users)
            if index + 1 < len(chunks):
                users = lanes.upload(weights[chunks[index + 1]])
            if done is not None:
                lanes.download(done, out)  # overlaps the selection just queued
            with lanes.computing(None):
                done = lanes.finished(rows, *self._exact(*selected))
        if done is not None:
            lanes.download(done, out)

    def _select(self, users: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Queue the scores and each row's k + 1 best, sorted by score (ties unordered)."""
        torch = self._torch
        scores = users @ self._items_t
        if self.k == self.n_items:
            values, picked = torch.sort(scores, dim=1, descending=True, stable=True)
            return scores, values, picked, torch.zeros_like(values[:, :1], dtype=torch.bool)
        values, picked = torch.topk(scores, self.k + 1, dim=1, sorted=True)
        return scores, values, picked, values[:, 1:] == values[:, :-1]

    def _exact(
        self,
        scores: torch.Tensor,
        values: torch.Tensor,
        picked: torch.Tensor,
        equal: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Give the rows with equal neighbouring scores the exact order: (int32 items, scores)."""
        k = self.k
        tied = equal.any(dim=1).nonzero().flatten()  # the one host sync of a chunk
        if len(tied):
            # The k-th score ties with the (k+1)-th: ties beyond the k + 1 picked may belong
            # in the top k, so these rows are selected again with a full stable sort.
            cut = tied[equal[tied, -1]] if k < self.n_items else tied[:0]
            if len(cut):
                full = self._torch.sort(scores[cut], dim=1, descending=True, stable=True)
                picked[cut, :k] = full.indices[:, :k]
            picked[tied, :k] = _tie_order(values[tied, :k], picked[tied, :k], self.n_items)
        # The k best scores themselves do not depend on which tied items were picked.
        return picked[:, :k].to(self._torch.int32), values[:, :k].contiguous()


class _Chunk(NamedTuple):
    """One chunk's result on the device, waiting for its copy to the host."""

    rows: slice
    items: torch.Tensor
    scores: torch.Tensor
    ready: Any  # the compute stream's event after the chunk's last kernel (None on a CPU)


def _tie_order(values: torch.Tensor, picked: torch.Tensor, n_items: int) -> torch.Tensor:
    """Rows sorted by score descending: order each run of equal scores by item row ascending.

    One sort of a composite key (the run's index among the row's distinct scores, then the
    item row), so no stable sort over float64 scores is needed.
    """
    runs = (values[:, 1:] != values[:, :-1]).cumsum(dim=1)
    key = picked.clone()
    key[:, 1:] += runs * n_items
    ordered: torch.Tensor = key.sort(dim=1).values.remainder(n_items)
    return ordered


class _Lanes:
    """A compute and a copy stream on a card (with the events between them); plain on a CPU."""

    def __init__(self, torch: Any, device: torch.device) -> None:
        self._torch = torch
        self.device = device
        cuda = device.type == "cuda"
        self._compute = torch.cuda.Stream(device) if cuda else None
        self._copy = torch.cuda.Stream(device) if cuda else None
        self._uploaded: Any = None

    def upload(self, weights: NDArray[np.float64]) -> torch.Tensor:
        """Start copying one chunk of users to the device on the copy stream."""
        host = self._torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float64))
        with self._on(self._copy):
            users: torch.Tensor = host.to(self.device, non_blocking=True)
            self._uploaded = self._event(self._copy)
        return users

    @contextmanager
    def computing(self, users: torch.Tensor | None) -> Iterator[None]:
        """Run the block on the compute stream, after `users` (if given) has arrived."""
        with self._on(self._compute):
            if users is not None and self._compute is not None:
                self._compute.wait_event(self._uploaded)
                users.record_stream(self._compute)  # freed only once the product has read it
            yield

    def finished(self, rows: slice, items: torch.Tensor, scores: torch.Tensor) -> _Chunk:
        """A chunk whose kernels are all queued on the compute stream."""
        return _Chunk(rows, items, scores, self._event(self._compute))

    def download(self, chunk: _Chunk, out: TopRows) -> None:
        """Copy a finished chunk into its rows of the host result (returns once copied)."""
        with self._on(self._copy):
            if self._copy is not None:
                self._copy.wait_event(chunk.ready)
            self._torch.from_numpy(out.items[chunk.rows]).copy_(chunk.items)
            self._torch.from_numpy(out.scores[chunk.rows]).copy_(chunk.scores)

    def _on(self, stream: Any) -> Any:
        return self._torch.cuda.stream(stream) if stream is not None else nullcontext()

    def _event(self, stream: Any) -> Any:
        if stream is None:
            return None
        event = self._torch.cuda.Event()
        event.record(stream)
        return event
