"""The torch scorer (CUDA, or the CPU for tests): `W @ X.T` and top-k on the device.

It gives exactly `NumpyScorer`'s result (see `batch.materialize.scoring`): float64 scores and
items ordered by score descending, then item row ascending. A call streams: it cuts the users
into chunks and runs a pipeline, where the compute stream scores and selects chunk c while
copy streams upload chunk c + 1's users and bring chunk c - 1's result into one of two host
buffers, which the caller reads (`blocks`) while chunk c + 1 is computed. The
two buffers are pinned (copies at the bus's speed), allocated once per scorer, sized for the
chunks of a call of `part_users` users, and reused by every later call: a worker scoring part
after part never touches fresh host memory (on an H100 machine, first-touching the 600 MB
result of 10^5 users took 0.13-0.36 s, while the card's whole job takes 0.04 s; BENCHMARKS.md).
The exact order is made on the device. A chunk's copy to the host is queued right behind its
top-k; whether the chunk holds equal scores is read from a flag copied to the host with it, and
only then, in the rare chunk that does, are its tied rows ordered and copied again. So the card
never waits for the host, and a call of one chunk waits for it once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from batch.materialize.scoring import Blocks, Scorer, TopRows

if TYPE_CHECKING:
    import torch

CUDA_CHUNK_SCORES = 1 << 28  # at most 2 GiB of float64 scores per chunk
PIPELINE_CHUNKS = 8  # a big call is cut into at least about this many chunks


class TorchScorer(Scorer):
    """The torch backend: the same result as `NumpyScorer`, pipelined on a card."""

    def __init__(
        self,
        items: NDArray[np.float64],
        k: int,
        device: str = "cuda",
        chunk_scores: int = CUDA_CHUNK_SCORES,
        part_users: int = 0,
    ) -> None:
        """Put the items on `device`; size the host buffers for calls of `part_users` users
        (a larger call grows them once) and, on a card, run one such chunk through so that
        the first call finds its memory cached and its kernels chosen."""
        import torch

        super().__init__(items, k, chunk_scores)
        self._torch = torch
        self.device = torch.device(device)
        self._items_t = (
            torch.from_numpy(np.ascontiguousarray(items, dtype=np.float64)).to(self.device).T
        )
        self._lanes = _Lanes(torch, self.device)
        self._buffers: list[_HostBuffer] = []
        if part_users:
            rows = min(self.chunk_rows(part_users), part_users)
            self._host_buffers(rows)
            if self.device.type == "cuda":
                warm = np.random.default_rng(0).standard_normal((rows, items.shape[1]))
                for _ in self.blocks(warm):
                    pass

    def chunk_rows(self, n_users: int) -> int:
        """Users per chunk: at most the score budget, small enough for PIPELINE_CHUNKS chunks,
        not below 1/PIPELINE_CHUNKS of the budget (smaller chunks only add fixed costs: on an
        H100, chunks of 2/3 and 1/3 of movielens-100k's users made a call 1.2x and 2.4x slower)."""
        most = self.chunk_users
        return min(most, max(-(-n_users // PIPELINE_CHUNKS), most // PIPELINE_CHUNKS, 1))

    def _host_buffers(self, rows: int) -> list[_HostBuffer]:
        """The two host buffers, holding at least `rows` users' results each."""
        if not self._buffers or len(self._buffers[0].items) < rows:
            self._buffers = []  # freed before the larger pair is pinned
            pinned = self.device.type == "cuda"
            self._buffers = [_HostBuffer.empty(self._torch, rows, self.k, pinned) for _ in "ab"]
        return self._buffers

    def blocks(self, weights: NDArray[np.float64]) -> Blocks:
        """Chunk after chunk of users, each block in one of the two reused host buffers.

        A chunk's copy to the host is queued right behind its top-k, before the host has
        read whether the chunk holds equal scores; the caller reads a block while the card
        copies the next chunk and computes the one after it."""
        if not weights.shape[0]:
            return
        step = self.chunk_rows(weights.shape[0])
        chunks = [slice(s, min(s + step, weights.shape[0])) for s in range(0, len(weights), step)]
        buffers = self._host_buffers(min(step, weights.shape[0]))
        lanes = self._lanes
        users = lanes.upload(weights[chunks[0]])
        queued: deque[_Queued] = deque()
        for index, rows in enumerate(chunks):
            with lanes.computing(users):
                selected = self._select(rows, users)
            if index + 1 < len(chunks):
                users = lanes.upload(weights[chunks[index + 1]])
            if len(queued) == 2:  # this chunk's buffer holds the block of two chunks ago
                yield self._checked(queued.popleft())
            queued.append(_Queued(selected, self._download(selected, buffers[index % 2])))
        while queued:
            yield self._checked(queued.popleft())

    def _select(self, rows: slice, users: torch.Tensor) -> _Selected:
        """Queue the scores, each row's k + 1 best sorted by score (ties unordered), and the
        copy to the host of whether any row holds equal neighbouring scores."""
        torch = self._torch
        scores = users @ self._items_t
        if self.k == self.n_items:
            values, picked = torch.sort(scores, dim=1, descending=True, stable=True)
            equal = torch.zeros_like(values[:, :1], dtype=torch.bool)
        else:
            values, picked = torch.topk(scores, self.k + 1, dim=1, sorted=True)
            equal = values[:, 1:] == values[:, :-1]
        tied = equal.any(dim=1)
        flag = torch.empty(1, dtype=torch.bool, pin_memory=self.device.type == "cuda")
        flag.copy_(tied.any().reshape(1), non_blocking=True)
        return _Selected(rows, scores, values, picked, equal, tied, flag)

    def _download(self, chunk: _Selected, buffer: _HostBuffer) -> _Copy:
        """Queue the copy of the chunk's k best (items as int32, scores) into `buffer`, after
        the flag's copy on the compute stream."""
        k = self.k
        with self._lanes.computing(None):
            items, scores = chunk.picked[:, :k].to(self._torch.int32), chunk.values[:, :k]
            scores = scores.contiguous()
            ready = self._lanes.mark()
        return _Copy(buffer, self._lanes.download(items, scores, ready, buffer))

    def _checked(self, queued: _Queued) -> tuple[slice, TopRows]:
        """The chunk's block once it has arrived; rows with equal neighbouring scores are
        first given the exact order and copied again (rare with real-valued factors)."""
        k, torch = self.k, self._torch
        chunk, copy = queued
        _Lanes.wait(copy.copied)  # the flag was copied before the copy's start
        if bool(chunk.flag[0]):
            picked, values = chunk.picked, chunk.values
            with self._lanes.computing(None):
                tied = chunk.tied.nonzero().flatten()
                # The k-th score ties with the (k+1)-th: ties beyond the k + 1 picked may belong
                # in the top k, so these rows are selected again with a full stable sort.
                cut = tied[chunk.equal[tied, -1]] if k < self.n_items else tied[:0]
                if len(cut):
                    full = torch.sort(chunk.scores[cut], dim=1, descending=True, stable=True)
                    picked[cut, :k] = full.indices[:, :k]
                picked[tied, :k] = _tie_order(values[tied, :k], picked[tied, :k], self.n_items)
            # The k best scores themselves do not depend on which tied items were picked.
            copy = self._download(chunk, copy.buffer)
            _Lanes.wait(copy.copied)
        n = chunk.rows.stop - chunk.rows.start
        return chunk.rows, TopRows(copy.buffer.items[:n].numpy(), copy.buffer.scores[:n].numpy())


class _HostBuffer(NamedTuple):
    """Host memory for one chunk's result: (rows, k) int32 items and float64 scores."""

    items: torch.Tensor
    scores: torch.Tensor

    @classmethod
    def empty(cls, torch: Any, rows: int, k: int, pinned: bool) -> _HostBuffer:
        return cls(
            torch.empty((rows, k), dtype=torch.int32, pin_memory=pinned),
            torch.empty((rows, k), dtype=torch.float64, pin_memory=pinned),
        )


class _Selected(NamedTuple):
    """One chunk selected on the device, its exact order not checked yet."""

    rows: slice
    scores: torch.Tensor
    values: torch.Tensor
    picked: torch.Tensor
    equal: torch.Tensor
    tied: torch.Tensor
    flag: torch.Tensor  # on the host: whether any row of the chunk is tied


class _Copy(NamedTuple):
    """A chunk's k best on their way into a host buffer."""

    buffer: _HostBuffer
    copied: Any  # the copy stream's event after the copy (None on a CPU)


class _Queued(NamedTuple):
    """A selected chunk and its queued copy."""

    chunk: _Selected
    copy: _Copy


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
    """A compute stream and two copy streams, one each way, on a card (with the events between
    them); plain on a CPU. An upload from pageable memory holds the host until it is done, so
    it must not queue behind a download."""

    def __init__(self, torch: Any, device: torch.device) -> None:
        self._torch = torch
        self.device = device
        cuda = device.type == "cuda"
        self._compute = torch.cuda.Stream(device) if cuda else None
        self._copy = torch.cuda.Stream(device) if cuda else None
        self._upload = torch.cuda.Stream(device) if cuda else None
        self._uploaded: Any = None

    def upload(self, weights: NDArray[np.float64]) -> torch.Tensor:
        """Start copying one chunk of users to the device on the upload stream."""
        host = self._torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float64))
        with self._on(self._upload):
            users: torch.Tensor = host.to(self.device, non_blocking=True)
            self._uploaded = self._event(self._upload)
        return users

    @contextmanager
    def computing(self, users: torch.Tensor | None) -> Iterator[None]:
        """Run the block on the compute stream, after `users` (if given) has arrived."""
        with self._on(self._compute):
            if users is not None and self._compute is not None:
                self._compute.wait_event(self._uploaded)
                users.record_stream(self._compute)  # freed only once the product has read it
            yield

    def mark(self) -> Any:
        """An event after the work queued so far on the compute stream (None on a CPU)."""
        return self._event(self._compute)

    def download(
        self, items: torch.Tensor, scores: torch.Tensor, ready: Any, buffer: _HostBuffer
    ) -> Any:
        """Queue the copy of a chunk's result into `buffer` once `ready`; its event."""
        with self._on(self._copy):
            if self._copy is not None:
                self._copy.wait_event(ready)
                items.record_stream(self._copy)  # freed only once copied
                scores.record_stream(self._copy)
            n = items.shape[0]
            buffer.items[:n].copy_(items, non_blocking=True)
            buffer.scores[:n].copy_(scores, non_blocking=True)
            return self._event(self._copy)

    @staticmethod
    def wait(event: Any) -> None:
        """Block the host until `event` has happened (nothing to wait for on a CPU)."""
        if event is not None:
            event.synchronize()

    def _on(self, stream: Any) -> Any:
        return self._torch.cuda.stream(stream) if stream is not None else nullcontext()

    def _event(self, stream: Any) -> Any:
        if stream is None:
            return None
        event = self._torch.cuda.Event()
        event.record(stream)
        return event
