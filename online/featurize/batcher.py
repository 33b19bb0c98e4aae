"""Adaptive batching of blocking calls, off the event loop (Clipper's batching queue).

Requests wait in a queue; one consumer takes up to the AIMD controller's batch size (after an
optional short wait for more to arrive), runs the batch function in a worker thread, times it,
feeds the time to the controller and answers every request of the batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from online.featurize.aimd import AimdController

In = TypeVar("In")
Out = TypeVar("Out")


class AdaptiveBatcher(Generic[In, Out]):
    """Batches calls of `run(inputs) -> outputs` (one output per input) with AIMD sizing."""

    def __init__(
        self,
        run: Callable[[Sequence[In]], Sequence[Out]],
        controller: AimdController,
        max_wait_s: float = 0.0,
    ) -> None:
        """Batch calls of `run`; `max_wait_s` is how long a short batch waits for more."""
        self.run = run
        self.controller = controller
        self.max_wait_s = max_wait_s
        self.batches: list[tuple[int, float]] = []
        self._queue: asyncio.Queue[tuple[In, asyncio.Future[Out]]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def submit(self, value: In) -> Out:
        """The output for `value`, computed in some batch."""
        if self._queue is None or self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._consume(self._queue))
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        await self._queue.put((value, future))
        return await future

    async def _take(
        self, queue: asyncio.Queue[tuple[In, asyncio.Future[Out]]]
    ) -> list[tuple[In, asyncio.Future[Out]]]:
        batch = [await queue.get()]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.controller.size:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), left))
            except TimeoutError:
                break
        return batch

    async def _consume(self, queue: asyncio.Queue[tuple[In, asyncio.Future[Out]]]) -> None:
        while True:
            batch = await self._take(queue)
            started = time.perf_counter()
            try:
                outputs = await asyncio.to_thread(self.run, [value for value, _ in batch])
            except Exception as error:  # every caller of the batch gets it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            latency = time.perf_counter() - started
            self.controller.record(len(batch), latency)
            self.batches.append((len(batch), latency))
            del self.batches[:-1000]
            for (_, future), output in zip(batch, outputs, strict=True):
                if not future.done():
                    future.set_result(output)

    async def close(self) -> None:
        """Stop the consumer (queued requests are cancelled)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
