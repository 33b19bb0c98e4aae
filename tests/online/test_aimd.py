"""Clipper's AIMD batch sizing and the adaptive batcher that uses it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from online.featurize.aimd import AimdController
from online.featurize.batcher import AdaptiveBatcher


def test_grows_by_one_step_per_full_batch_under_the_slo() -> None:
    controller = AimdController(slo_s=0.01, step=2)
    sizes = [controller.record(controller.size, 0.005) for _ in range(5)]
    assert sizes == [3, 5, 7, 9, 11]


def test_a_short_batch_does_not_grow_the_size() -> None:
    controller = AimdController(slo_s=0.01, size=8)
    assert controller.record(3, 0.001) == 8


def test_halves_above_the_slo_and_never_drops_below_one() -> None:
    controller = AimdController(slo_s=0.01, size=40)
    assert [controller.record(40, 0.02) for _ in range(7)] == [20, 10, 5, 2, 1, 1, 1]


@given(
    st.lists(st.tuples(st.integers(1, 64), st.floats(0.0, 0.1)), max_size=60),
    st.integers(1, 4),
)
def test_the_size_stays_within_its_bounds(batches: list[tuple[int, float]], step: int) -> None:
    controller = AimdController(slo_s=0.02, step=step, max_size=32)
    for batch, latency in batches:
        before = controller.size
        after = controller.record(batch, latency)
        assert 1 <= after <= 32
        if latency > 0.02:
            assert after == max(1, before // 2)
        else:
            assert after in (before, min(32, before + step))


def test_the_batcher_answers_every_request_with_its_own_output() -> None:
    seen: list[int] = []
    threads: set[str] = set()

    def square(values: Sequence[int]) -> list[int]:
        seen.append(len(values))
        threads.add(threading.current_thread().name)
        return [v * v for v in values]

    async def run() -> list[int]:
        batcher = AdaptiveBatcher(square, AimdController(slo_s=10.0), max_wait_s=0.01)
        try:
            return list(await asyncio.gather(*(batcher.submit(v) for v in range(50))))
        finally:
            await batcher.close()

    assert asyncio.run(run()) == [v * v for v in range(50)]
    assert sum(seen) == 50 and max(seen) > 1  # batched, the size grew from 1
    assert threading.main_thread().name not in threads  # off the event loop's thread


def test_a_failing_batch_fails_its_requests_only() -> None:
    def fail_on_seven(values: Sequence[int]) -> list[int]:
        if 7 in values:
            raise ValueError("seven")
        return list(values)

    async def run() -> tuple[object, int]:
        batcher = AdaptiveBatcher(fail_on_seven, AimdController(slo_s=10.0))
        try:
            failed = await asyncio.gather(batcher.submit(7), return_exceptions=True)
            return failed[0], await batcher.submit(8)
        finally:
            await batcher.close()

    error, value = asyncio.run(run())
    assert isinstance(error, ValueError) and value == 8
