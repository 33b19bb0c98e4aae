"""SelectionBatch runs the selections of one event-loop iteration together, each as alone."""

from __future__ import annotations

import asyncio

import pytest

from online.selection_batch import SelectionBatch


def test_selections_of_one_iteration_run_back_to_back_in_order() -> None:
    trace: list[str] = []

    def choose(name: str) -> str:
        trace.append(f"run {name}")
        return name

    async def request(batch: SelectionBatch, name: str) -> str:
        trace.append(f"queue {name}")
        return await batch.run(lambda: choose(name))

    async def main() -> list[str]:
        batch = SelectionBatch()
        first = await asyncio.gather(*(request(batch, name) for name in "abc"))
        second = await request(batch, "d")  # a later iteration runs on its own
        return [*first, second]

    assert asyncio.run(main()) == ["a", "b", "c", "d"]
    assert trace == ["queue a", "queue b", "queue c", "run a", "run b", "run c", "queue d", "run d"]


def test_a_failing_selection_fails_only_its_own_request() -> None:
    def boom() -> str:
        raise ValueError("bad filter")

    async def main() -> tuple[object, ...]:
        batch = SelectionBatch()
        return tuple(
            await asyncio.gather(batch.run(lambda: 1), batch.run(boom), batch.run(lambda: 3),
                                 return_exceptions=True)
        )  # fmt: skip

    ok, failed, also_ok = asyncio.run(main())
    assert (ok, also_ok) == (1, 3)
    assert isinstance(failed, ValueError)


def test_a_cancelled_request_is_skipped() -> None:
    ran: list[int] = []

    async def main() -> None:
        batch = SelectionBatch()
        doomed = asyncio.ensure_future(batch.run(lambda: ran.append(1)))
        kept = asyncio.ensure_future(batch.run(lambda: ran.append(2)))
        await asyncio.sleep(0)  # both queued
        doomed.cancel()
        await kept
        with pytest.raises(asyncio.CancelledError):
            await doomed

    asyncio.run(main())
    assert ran == [2]
