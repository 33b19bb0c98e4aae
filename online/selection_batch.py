"""Serve the policy selections of one event-loop iteration together, as one batch per policy.

Why: a selection is a few dozen small numpy calls. Measured inside a loaded server
(bench/bench_select_in_server.py), each ran 2.4-2.9x slower than in a tight loop: between two
selections the rest of a request (HTTP parsing, Redis I/O, JSON) evicts their code and data
from the caches. Under load several /predict requests reach their selection in the same
loop iteration (a mean of about 7 at 16 connections here), so each queues a validated
`SelectionRequest` and awaits it; once the iteration's ready callbacks are done, the queue
goes to `Policy.select_many`, one call per (policy, catalog), which serves the requests as
`select` would (Thompson sampling and greedy with batched products).

The batch closes one loop iteration after its first request, not at the end of that
iteration: the next iteration's poll for I/O takes in the Redis replies that have arrived
meanwhile, and the requests they resume join the batch. Measured the same way, this took the
mean Thompson batch from 6.7 to 11.7 requests and its CPU per request in the server from 35
to 25 µs; waiting a second iteration gained nothing more. A lone request waits one turn of
the loop (a poll that does not block, as a callback is ready).
"""

from __future__ import annotations

import asyncio

from velox.catalog import ItemMatrix
from velox.policies import Policy, Selection, SelectionRequest

Queued = tuple[SelectionRequest, "asyncio.Future[Selection]"]
Batch = tuple[Policy, ItemMatrix, list[Queued]]


class SelectionBatch:
    """Queues selections for the end of the current event-loop iteration and serves them."""

    def __init__(self) -> None:
        # Keyed by identity: a catalog is a frozen dataclass of arrays, which does not hash.
        self._queue: dict[tuple[int, int], Batch] = {}

    async def select(
        self, policy: Policy, items: ItemMatrix, request: SelectionRequest
    ) -> Selection:
        """`policy.select_many(items, [request])[0]`, served with this iteration's others."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Selection] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._close_after_next_poll, loop)
        batch = self._queue.setdefault((id(policy), id(items)), (policy, items, []))
        batch[2].append((request, future))
        return await future

    def _close_after_next_poll(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.call_soon(self._run_queued)

    def _run_queued(self) -> None:
        queued, self._queue = self._queue, {}
        for policy, items, entries in queued.values():
            live = [(request, future) for request, future in entries if not future.cancelled()]
            try:
                selections = policy.select_many(items, [request for request, _ in live])
            except Exception:
                # A failure is not handled here: each request is served alone, and the one that
                # fails gets the error (re-raised in its handler: a VeloxError becomes its 4xx,
                # anything else a 500), while the others of the batch are still answered.
                self._serve_one_by_one(policy, items, live)
                continue
            for (_, future), selection in zip(live, selections, strict=True):
                future.set_result(selection)

    @staticmethod
    def _serve_one_by_one(policy: Policy, items: ItemMatrix, live: list[Queued]) -> None:
        for request, future in live:
            try:
                future.set_result(policy.select_many(items, [request])[0])
            except Exception as error:
                future.set_exception(error)
