"""`Policy.select_many` serves a batch as `select` would: one request exactly, several with the
same sequential draws (Thompson sampling: sharing the first request's propensity normals)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.special import ndtr  # type: ignore[import-untyped]

from tests.velox.test_policies import POLICIES, _catalog, _posterior
from velox.catalog import ItemMatrix
from velox.policies import Policy, SelectionRequest, ThompsonSampling
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


SEQUENTIAL = sorted(name for name in POLICIES if not name.startswith("thompson"))


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_select_many_equals_sequential_select(name: str) -> None:
    items = _catalog(300, 8)
    policy = POLICIES[name](0)
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


def test_select_many_of_one_request_is_select(make: Callable[[int], Policy]) -> None:
    items = _catalog(300, 8)
    policy = make(0)
    for posterior, k, filters in _mixed_requests(items):
        alone_rng, batch_rng = np.random.default_rng(5), np.random.default_rng(5)
        one = policy.select(items, posterior, k, rng=alone_rng, **filters)
        request = policy.request(items, posterior, k, **filters)
        (many,) = policy.select_many(items, [request], rng=batch_rng)
        np.testing.assert_array_equal(many.items, one.items)
        np.testing.assert_array_equal(many.propensities, one.propensities)
        np.testing.assert_allclose(many.scores, one.scores, rtol=1e-6, atol=1e-6)
        assert alone_rng.random() == batch_rng.random()


@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_thompson_batch_shares_the_first_requests_propensity_normals(scale: float) -> None:
    """Each selection is `_select_drawn` of its own ranking draw and request 0's other normals,
    for the batched (unrestricted) requests and the ones served alone alike."""
    items = _catalog(300, 8)
    policy = ThompsonSampling(scale, seed=0)
    cases = _mixed_requests(items)
    requests = [policy.request(items, p, k, **f) for p, k, f in cases]
    batched = policy.select_many(items, requests, rng=np.random.default_rng(11))
    replay = np.random.default_rng(11)
    first = replay.standard_normal((items.dim, policy.n_draws + 1))
    ranking = [first[:, 0], *replay.standard_normal((len(requests) - 1, items.dim))]
    for request, draw, many in zip(requests, ranking, batched, strict=True):
        normals = np.column_stack([draw, first[:, 1:]])
        one = policy._select_drawn(items, request.posterior, request.k, request.eligible, normals)
        np.testing.assert_array_equal(many.items, one.items)
        np.testing.assert_array_equal(many.propensities, one.propensities)
        np.testing.assert_allclose(many.scores, one.scores, rtol=1e-6, atol=1e-6)


def test_thompson_batched_choice_probability_matches_the_closed_form() -> None:
    """The two-item case of test_policies, served in batches of 10: sharing the propensity
    normals leaves both the choice frequency and the claimed propensities unbiased."""
    items = ItemMatrix.from_features(np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    posterior = _two_item_posterior()
    expected = float(ndtr(0.5 / np.sqrt(2.0)))
    policy = ThompsonSampling(1.0, seed=11, n_draws=2_000)
    requests = [policy.request(items, posterior, 1)] * 10
    selections = [s for _ in range(300) for s in policy.select_many(items, requests)]
    first = np.array([int(s.items[0]) for s in selections])
    claimed = np.array([float(s.propensities[0]) for s in selections])
    sigma = np.sqrt(expected * (1 - expected) / first.size)
    assert abs(np.mean(first == 0) - expected) < 4 * sigma
    # Within a batch the claims share their draws: 300 independent 2 000-draw estimates.
    np.testing.assert_allclose(claimed[first == 0].mean(), expected, atol=0.01)
    np.testing.assert_allclose(claimed[first == 1].mean(), 1 - expected, atol=0.01)


def _two_item_posterior() -> UserPosterior:
    return UserPosterior.prior([0.5, 0.0], lam=1.0, noise_std=1.0)  # A⁻¹ = I, Δ = [1, -1]


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
