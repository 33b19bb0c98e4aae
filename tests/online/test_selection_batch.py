"""SelectionBatch serves the selections that reach it within one event-loop iteration and the
next as one batch per policy."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest

from online.selection_batch import SelectionBatch
from tests.velox.test_policies import _catalog, _posterior
from velox.catalog import ItemMatrix
from velox.errors import InvalidInputError
from velox.policies import Policy, Selection, SelectionRequest, ThompsonSampling

UNLUCKY_K = 13


class RecordingThompson(ThompsonSampling):
    """Thompson sampling that records each batch's size and fails every request of UNLUCKY_K."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self.batches: list[int] = []

    def _select_many(
        self, items: ItemMatrix, requests: Sequence[SelectionRequest], rng: np.random.Generator
    ) -> list[Selection]:
        self.batches.append(len(requests))
        if any(request.k == UNLUCKY_K for request in requests):
            raise InvalidInputError("unlucky k")
        return super()._select_many(items, requests, rng)


def _requests(policy: ThompsonSampling, items: ItemMatrix, n: int) -> list[SelectionRequest]:
    return [
        policy.request(items, _posterior(items, seed=s), 4, exclude=np.array([s])) for s in range(n)
    ]


def test_one_iterations_selections_are_one_batch_served_as_select_many() -> None:
    items = _catalog(120, 6)
    policy = RecordingThompson(seed=5)
    requests = _requests(policy, items, 4)

    async def main() -> list[Selection]:
        batch = SelectionBatch()
        first = await asyncio.gather(*(batch.select(policy, items, r) for r in requests[:3]))
        later = await batch.select(policy, items, requests[3])  # a later iteration, alone
        return [*first, later]

    served = asyncio.run(main())
    assert policy.batches == [3, 1]
    reference = ThompsonSampling(seed=5)
    expected = [
        *reference.select_many(items, requests[:3]),
        *reference.select_many(items, requests[3:]),
    ]
    for selection, alone in zip(served, expected, strict=True):
        np.testing.assert_array_equal(selection.items, alone.items)
        np.testing.assert_array_equal(selection.propensities, alone.propensities)


async def _after_iterations(
    turns: int, batch: SelectionBatch, policy: Policy, items: ItemMatrix, request: SelectionRequest
) -> Selection:
    for _ in range(turns):
        await asyncio.sleep(0)
    return await batch.select(policy, items, request)


@pytest.mark.parametrize(("turns", "batches"), [(0, [2]), (1, [2]), (2, [1, 1])])
def test_the_batch_takes_in_requests_of_the_next_iteration_only(
    turns: int, batches: list[int]
) -> None:
    # A request resumed by the next poll for I/O (here: one turn of the loop later) joins the
    # batch of the first; one that comes two turns later finds it served and starts its own.
    items = _catalog(60, 4)
    policy = RecordingThompson(seed=3)
    request = policy.request(items, _posterior(items), 3)

    async def main() -> None:
        batch = SelectionBatch()
        await asyncio.gather(
            batch.select(policy, items, request),
            _after_iterations(turns, batch, policy, items, request),
        )

    asyncio.run(main())
    assert policy.batches == batches


def test_each_policy_and_catalog_is_its_own_batch() -> None:
    items, other_items = _catalog(80, 6), _catalog(90, 6, seed=3)
    first, second = RecordingThompson(seed=1), RecordingThompson(seed=2)
    request = first.request(items, _posterior(items), 3)
    other = first.request(other_items, _posterior(other_items), 3)

    async def main() -> list[Selection]:
        batch = SelectionBatch()
        return list(
            await asyncio.gather(
                batch.select(first, items, request),
                batch.select(second, items, request),
                batch.select(first, other_items, other),
                batch.select(first, items, request),
            )
        )

    served = asyncio.run(main())
    assert first.batches == [2, 1] and second.batches == [1]
    assert all(np.all(s.items < 80) for s in served[:2])


def test_a_failing_selection_fails_only_its_own_request() -> None:
    items = _catalog(60, 6)
    policy = RecordingThompson(seed=0)
    ok = policy.request(items, _posterior(items), 4)
    doomed = policy.request(items, _posterior(items), UNLUCKY_K, exclude=np.array([0]))

    async def main() -> list[Selection | BaseException]:
        batch = SelectionBatch()
        calls = (batch.select(policy, items, r) for r in (ok, doomed, ok))
        return list(await asyncio.gather(*calls, return_exceptions=True))

    first, failed, last = asyncio.run(main())
    assert isinstance(failed, InvalidInputError)
    assert isinstance(first, Selection) and isinstance(last, Selection)
    assert first.items.size == last.items.size == 4
    assert policy.batches == [3, 1, 1, 1]  # the batch failed, then each was served alone


def test_a_cancelled_request_is_skipped() -> None:
    items = _catalog(60, 6)
    policy = RecordingThompson(seed=0)
    request = policy.request(items, _posterior(items), 4)

    async def main() -> Selection:
        batch = SelectionBatch()
        doomed = asyncio.ensure_future(batch.select(policy, items, request))
        kept = asyncio.ensure_future(batch.select(policy, items, request))
        await asyncio.sleep(0)  # both queued
        doomed.cancel()
        selection = await kept
        with pytest.raises(asyncio.CancelledError):
            await doomed
        return selection

    assert asyncio.run(main()).items.size == 4
    assert policy.batches == [1]
