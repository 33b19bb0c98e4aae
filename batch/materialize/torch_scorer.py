"""The torch scorer (CUDA, or the CPU for tests): `W @ X.T` and top-k on the device.

It gives exactly `NumpyScorer`'s result (see `batch.materialize.scoring`): float64 scores and
items ordered by score descending, then item row ascending. A call that fits one chunk (all of
movielens-100k's users, a card's part of a small catalog) is one CUDA graph, captured on the
first call of its size and replayed (`_OneChunk`). A larger call streams: it cuts the users
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
never waits for the host.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from batch.materialize.scoring import Blocks, Scorer, TopRows
from batch.materialize.torch_lanes import HostBuffer, Lanes

if TYPE_CHECKING:
    import torch

CUDA_CHUNK_SCORES = 1 << 28  # at most 2 GiB of float64 scores per chunk
PIPELINE_CHUNKS = 8  # a big call is cut into at least about this many chunks
ONE_CHUNK_GRAPHS = 2  # call sizes whose one-chunk graph a scorer keeps (a part's, the last's)


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
        """Put the items on `device` and prepare calls of `part_users` users: the graph of a
        call that fits one chunk, or else the host buffers (a larger call grows them once)
        and, on a card, one chunk run through, so the first call finds its memory cached and
        its kernels chosen."""
        import torch

        super().__init__(items, k, chunk_scores)
        self._torch = torch
        self.device = torch.device(device)
        self._items_t = (
            torch.from_numpy(np.ascontiguousarray(items, dtype=np.float64)).to(self.device).T
        )
        self._lanes = Lanes(torch, self.device)
        self._buffers: list[HostBuffer] = []
        self._one_chunk: dict[int, _OneChunk] = {}
        if part_users and self.chunk_rows(part_users) >= part_users:
            self._one_chunk_runner(part_users)  # on a card, captured here
        elif part_users:
            rows = self.chunk_rows(part_users)
            self._host_buffers(rows)
            if self.device.type == "cuda":
                warm = np.random.default_rng(0).standard_normal((rows, items.shape[1]))
                for _ in self._pipelined(warm, rows):
                    pass

    def chunk_rows(self, n_users: int) -> int:
        """Users per chunk: at most the score budget, small enough for PIPELINE_CHUNKS chunks,
        not below 1/PIPELINE_CHUNKS of the budget (smaller chunks only add fixed costs: on an
        H100, chunks of 2/3 and 1/3 of movielens-100k's users made a call 1.2x and 2.4x slower)."""
        most = self.chunk_users
        return min(most, max(-(-n_users // PIPELINE_CHUNKS), most // PIPELINE_CHUNKS, 1))

    def _host_buffers(self, rows: int) -> list[HostBuffer]:
        """The two host buffers, holding at least `rows` users' results each."""
        if not self._buffers or len(self._buffers[0].items) < rows:
            self._buffers = []  # freed before the larger pair is pinned
            pinned = self.device.type == "cuda"
            self._buffers = [HostBuffer.empty(self._torch, rows, self.k, pinned) for _ in "ab"]
        return self._buffers

    def blocks(self, weights: NDArray[np.float64]) -> Blocks:
        """Chunk after chunk of users, each block in a reused host buffer: a call that fits
        one chunk replays its graph (`_OneChunk`); a larger call runs the pipeline."""
        if not weights.shape[0]:
            return
        step = self.chunk_rows(weights.shape[0])
        if step < weights.shape[0]:
            yield from self._pipelined(weights, step)
            return
        runner = self._one_chunk_runner(weights.shape[0])
        yield self._checked(_Queued(runner.run(weights), _Copy(runner.buffer, None)))

    def _pipelined(self, weights: NDArray[np.float64], step: int) -> Blocks:
        """Chunks of `step` users through the pipeline, each block in one of the two buffers.

        A chunk's copy to the host is queued right behind its top-k, before the host has
        read whether the chunk holds equal scores; the caller reads a block while the card
        copies the next chunk and computes the one after it."""
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

    def _one_chunk_runner(self, rows: int) -> _OneChunk:
        """The runner for one-chunk calls of `rows` users, built on first use; the scorer keeps
        the ONE_CHUNK_GRAPHS latest sizes (a worker's parts share one size, the last excepted)."""
        runner = self._one_chunk.pop(rows, None) or _OneChunk(self, rows)
        self._one_chunk[rows] = runner
        while len(self._one_chunk) > ONE_CHUNK_GRAPHS:
            del self._one_chunk[next(iter(self._one_chunk))]
        return runner

    def _select(self, rows: slice, users: torch.Tensor, flag: Any = None) -> _Selected:
        """Queue the scores, each row's k + 1 best sorted by score (ties unordered), and the
        copy to the host of whether any row holds equal neighbouring scores (into `flag`, a
        one-element host tensor, when given)."""
        torch = self._torch
        scores = users @ self._items_t
        if self.k == self.n_items:
            values, picked = torch.sort(scores, dim=1, descending=True, stable=True)
            equal = torch.zeros_like(values[:, :1], dtype=torch.bool)
        else:
            values, picked = torch.topk(scores, self.k + 1, dim=1, sorted=True)
            equal = values[:, 1:] == values[:, :-1]
        tied = equal.any(dim=1)
        if flag is None:
            flag = torch.empty(1, dtype=torch.bool, pin_memory=self.device.type == "cuda")
        flag.copy_(tied.any().reshape(1), non_blocking=True)
        return _Selected(rows, scores, values, picked, equal, tied, flag)

    def _download(self, chunk: _Selected, buffer: HostBuffer) -> _Copy:
        """Queue the copy of the chunk's k best (items as int32, scores) into `buffer`, after
        the flag's copy on the compute stream."""
        with self._lanes.computing(None):
            items, scores = self._k_best(chunk)
            ready = self._lanes.mark()
        return _Copy(buffer, self._lanes.download(items, scores, ready, buffer))

    def _k_best(self, chunk: _Selected) -> tuple[torch.Tensor, torch.Tensor]:
        """The chunk's k best as the host buffers hold them: int32 items, contiguous scores."""
        k = self.k
        return chunk.picked[:, :k].to(self._torch.int32), chunk.values[:, :k].contiguous()

    def _checked(self, queued: _Queued) -> tuple[slice, TopRows]:
        """The chunk's block once it has arrived; rows with equal neighbouring scores are
        first given the exact order and copied again (rare with real-valued factors)."""
        k, torch = self.k, self._torch
        chunk, copy = queued
        Lanes.wait(copy.copied)  # the flag was copied before the copy's start
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
            Lanes.wait(copy.copied)
        n = chunk.rows.stop - chunk.rows.start
        return chunk.rows, TopRows(copy.buffer.items[:n].numpy(), copy.buffer.scores[:n].numpy())


class _OneChunk:
    """Calls of exactly `rows` users that fit one chunk, on a card as one CUDA graph.

    A small call is bound by the host, not the card: on an H100, movielens-100k's 943 users took
    0.87 ms a call, of which the card worked about 0.45 ms (upload, product, top-k, copy back);
    the rest was some fifteen kernel and copy launches and stream events. The graph is the same
    steps captured once (the users' upload from a pinned buffer, `TorchScorer._select`, the copy
    of the k best into a pinned buffer) and replayed with one launch. It is kept only if its
    replay answers a random probe bit for bit as the eager steps did. On a CPU the steps run
    plainly, so the tests run this code but for the capture.
    """

    def __init__(self, scorer: TorchScorer, rows: int) -> None:
        torch, device = scorer._torch, scorer.device
        cuda = device.type == "cuda"
        self.rows = rows
        self._scorer = scorer
        dim = scorer._items_t.shape[0]
        self.host_users = torch.empty((rows, dim), dtype=torch.float64, pin_memory=cuda)
        self.users = torch.empty((rows, dim), dtype=torch.float64, device=device)
        self.buffer = HostBuffer.empty(torch, rows, scorer.k, cuda)
        self.flag = torch.empty(1, dtype=torch.bool, pin_memory=cuda)
        self._graph: _Graph | None = None
        self._stream: Any = torch.cuda.Stream(device) if cuda else None
        probe = np.random.default_rng(0).standard_normal((rows, dim))
        self.run(probe)  # the kernels chosen, scratch cached
        if cuda:
            self._use_graph_if_same(probe)

    def _use_graph_if_same(self, probe: NDArray[np.float64]) -> None:
        """Capture the steps; keep the graph only if its replay gives the eager steps' answer
        for `probe`, bit for bit (else warn and go on with the eager steps)."""
        eager = (self.buffer.items.clone(), self.buffer.scores.clone())
        graph = _captured(self._scorer._torch, self._stream, self._steps)
        if graph is None:
            return
        self._graph = graph
        self.run(probe)
        if not (eager[0].equal(self.buffer.items) and eager[1].equal(self.buffer.scores)):
            warnings.warn(
                "scoring runs without a CUDA graph: its replay differs from the eager steps",
                RuntimeWarning,
                stacklevel=2,
            )
            self._graph = None

    def _steps(self) -> _Selected:
        self.users.copy_(self.host_users, non_blocking=True)
        chunk = self._scorer._select(slice(0, self.rows), self.users, self.flag)
        items, scores = self._scorer._k_best(chunk)
        self.buffer.items.copy_(items, non_blocking=True)
        self.buffer.scores.copy_(scores, non_blocking=True)
        return chunk

    def run(self, weights: NDArray[np.float64]) -> _Selected:
        """Score `weights` (`rows` users); on return the k best are in `buffer`, and the flag
        says whether any row holds equal scores (which `TorchScorer._checked` then orders)."""
        self.host_users.numpy()[:] = weights
        if self._stream is None:
            return self._steps()
        with self._scorer._torch.cuda.stream(self._stream):
            if self._graph is None:
                chunk = self._steps()
            else:
                self._graph.graph.replay()
                chunk = self._graph.selected
        self._stream.synchronize()
        return chunk


class _Graph(NamedTuple):
    """A captured CUDA graph and the tensors its replays rewrite."""

    graph: Any
    selected: _Selected


def _captured(torch: Any, stream: Any, steps: Callable[[], _Selected]) -> _Graph | None:
    """`steps` captured on `stream` as a CUDA graph, or None (with a warning: the steps then
    run one by one, as fast as before graphs) where this torch or driver cannot capture them."""
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
            selected = steps()
    except RuntimeError as error:
        stream.synchronize()
        warnings.warn(f"scoring runs without a CUDA graph: {error}", RuntimeWarning, stacklevel=2)
        return None
    return _Graph(graph, selected)


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

    buffer: HostBuffer
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
