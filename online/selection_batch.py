"""Run the exploration policies' selections of one event-loop iteration back to back.

Why: a selection is a few dozen small numpy calls. Measured inside a loaded server
(bench/bench_select_in_server.py), each ran 2.4-2.9x slower than in a tight loop: between two
selections the rest of a request (HTTP parsing, Redis I/O, JSON) evicts their code and data
from the caches. Under load several /predict requests reach their selection in the same
loop iteration (a mean of about 7 at 16 connections here), so each queues its selection and
awaits it; the queue runs once the iteration's ready callbacks are done, one selection after
the other, each exactly as it would have run alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class SelectionBatch:
    """Queues callables for the end of the current event-loop iteration and runs them in order."""

    def __init__(self) -> None:
        self._queue: list[tuple[Callable[[], object], asyncio.Future[object]]] = []

    async def run(self, choose: Callable[[], T]) -> T:
        """`choose()`, run with the other selections queued in this iteration."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._run_queued)
        self._queue.append((choose, future))
        result: T = await future  # type: ignore[assignment]
        return result

    def _run_queued(self) -> None:
        queued, self._queue = self._queue, []
        for choose, future in queued:
            if future.cancelled():
                continue
            try:
                future.set_result(choose())
            except Exception as error:
                # Not handled here: re-raised by `run` in the request that queued it (a
                # VeloxError becomes its 4xx, anything else a 500 with its traceback), as if
                # that request had called `choose` itself; the other selections still run.
                future.set_exception(error)
