"""`Policy.select_many` serves a batch of requests exactly as `select` one after the other."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tests.velox.test_policies import POLICIES, _catalog, _posterior
from velox.catalog import ItemMatrix
from velox.policies import Policy, SelectionRequest
from velox.policies.base import batchable_groups
from velox.posterior import UserPosterior


@pytest.fixture(params=sorted(POLICIES))
def make(request: pytest.FixtureRequest) -> Callable[[int], Policy]:
    """A constructor of each policy in turn, taking the seed."""
    return POLICIES[request.param]


def _mixed_requests(
    items: ItemMatrix,
) -> list[tuple[UserPosterior, int, dict[str, np.ndarray]]]:
    """Unrestricted requests of two k (batchable), filtered ones and one k beyond the catalog."""
    rng = np.random.default_rng(7)
    cases: list[tuple[UserPosterior, int, dict[str, np.ndarray]]] = []
    for user in range(10):
        posterior = _posterior(items, n_obs=5 * user, seed=100 + user)
        k = 5 if user % 2 else 3
        filters: dict[str, np.ndarray] = {}
        if user == 4:
            filters = {"exclude": rng.choice(items.n, size=20, replace=False)}
        if user == 7:
            filters = {"allowed": rng.random(items.n) < 0.4}
        cases.append((posterior, items.n + 2 if user == 9 else k, filters))
    return cases


def test_select_many_equals_sequential_select(make: Callable[[int], Policy]) -> None:
    items = _catalog(300, 8)
    policy = make(0)
    cases = _mixed_requests(items)
    alone_rng, batch_rng = np.random.default_rng(11), np.random.default_rng(11)
    alone = [policy.select(items, p, k, rng=alone_rng, **f) for p, k, f in cases]
    requests = [policy.request(items, p, k, **f) for p, k, f in cases]
    batched = policy.select_many(items, requests, rng=batch_rng)
    assert len(batched) == len(alone)
    for one, many in zip(alone, batched, strict=True):
        np.testing.assert_array_equal(many.items, one.items)
        np.testing.assert_array_equal(many.propensities, one.propensities)
        np.testing.assert_allclose(many.scores, one.scores, rtol=1e-6, atol=1e-6)
    # Both streams advanced alike: the next draw is the same.
    assert alone_rng.random() == batch_rng.random()


def test_select_many_of_nothing_draws_nothing(make: Callable[[int], Policy]) -> None:
    rng = np.random.default_rng(3)
    assert make(0).select_many(_catalog(), [], rng=rng) == []
    assert rng.random() == np.random.default_rng(3).random()


def test_batchable_groups_are_unrestricted_requests_of_one_k() -> None:
    items = _catalog(50, 4)
    policy = POLICIES["greedy"](0)
    posterior = _posterior(items)
    requests: list[SelectionRequest] = [
        policy.request(items, posterior, 3),
        policy.request(items, posterior, 5),
        policy.request(items, posterior, 3, exclude=np.array([1])),
        policy.request(items, posterior, 3),
        policy.request(items, posterior, 5, allowed=np.ones(50, dtype=np.bool_)),
        policy.request(items, posterior, 3),
    ]
    assert batchable_groups(requests) == {3: [0, 3, 5]}
