"""The torch scorer's plumbing on a card: its streams and events, and its pinned host buffers.

On a CPU (the tests) the same calls run plainly, with no streams and nothing to wait for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import torch


class HostBuffer(NamedTuple):
    """Host memory for one chunk's result: (rows, k) int32 items and float64 scores."""

    items: torch.Tensor
    scores: torch.Tensor

    @classmethod
    def empty(cls, torch: Any, rows: int, k: int, pinned: bool) -> HostBuffer:
        return cls(
            torch.empty((rows, k), dtype=torch.int32, pin_memory=pinned),
            torch.empty((rows, k), dtype=torch.float64, pin_memory=pinned),
        )


class Lanes:
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
        self, items: torch.Tensor, scores: torch.Tensor, ready: Any, buffer: HostBuffer
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
