"""Target-policy action distributions agree with what each policy actually selects."""

from __future__ import annotations

import numpy as np
import pytest

from velox.catalog import ItemMatrix
from velox.errors import InvalidInputError
from velox.ope.target import action_distribution
from velox.policies import EpsilonGreedy, Greedy, LinUCB, Policy, Selection, ThompsonSampling
from velox.policies.base import Eligibility
from velox.policies.slate import SlatePolicy
from velox.posterior import UserPosterior
from velox.scoring import score_items


def _catalog(n: int = 40, dim: int = 4, seed: int = 0) -> ItemMatrix:
    rng = np.random.default_rng(seed)
    return ItemMatrix.from_features(rng.normal(size=(n, dim)).astype(np.float32))


def _posterior(items: ItemMatrix, n_obs: int = 15, seed: int = 1) -> UserPosterior:
    rng = np.random.default_rng(seed)
    posterior = UserPosterior.prior(rng.normal(scale=0.3, size=items.dim), 1.0, 0.5)
    for i in rng.integers(0, items.n, size=n_obs):
        posterior.update(items.features[i], rng.normal())
    return posterior


def _frequencies(
    policy: Policy,
    items: ItemMatrix,
    posterior: UserPosterior,
    draws: int,
    *,
    slot: int = 0,
    k: int = 1,
    allowed: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    counts = np.zeros(items.n)
    for _ in range(draws):
        chosen = policy.select(items, posterior, k, allowed=allowed, exclude=exclude).items
        counts[chosen[slot]] += 1
    return counts / draws


def test_greedy_and_linucb_are_point_masses_on_their_choice() -> None:
    items = _catalog()
    posterior = _posterior(items)
    exclude = np.array([3, 7])
    for policy in (Greedy(), LinUCB(1.5)):
        chosen = policy.select(items, posterior, 1, exclude=exclude).items[0]
        pi = action_distribution(policy, items, posterior, exclude=exclude)
        assert pi[chosen] == 1.0 and pi.sum() == 1.0


def test_epsilon_greedy_matches_the_formula_and_empirical_frequencies() -> None:
    items = _catalog()
    posterior = _posterior(items)
    allowed = np.arange(items.n) % 2 == 0
    exclude = np.array([0, 2])
    policy = EpsilonGreedy(0.3, seed=4)
    pi = action_distribution(policy, items, posterior, allowed=allowed, exclude=exclude)
    eligible = Eligibility(allowed, exclude).mask(items.n)
    assert eligible is not None
    scores = np.where(eligible, score_items(items, posterior.mean()), -np.inf)
    expected = np.where(eligible, 0.3 / eligible.sum(), 0.0)
    expected[np.argmax(scores)] += 0.7
    np.testing.assert_allclose(pi, expected, atol=1e-12)
    empirical = _frequencies(policy, items, posterior, 10_000, allowed=allowed, exclude=exclude)
    sigma = np.sqrt(pi * (1 - pi) / 10_000)
    assert np.all(np.abs(empirical - pi) <= 3 * sigma + 1e-12)


def test_slate_exploit_slots_are_certain_and_the_last_slot_is_uniform_over_the_pool() -> None:
    items = _catalog()
    posterior = _posterior(items)
    for pool in (None, 5):
        policy = SlatePolicy(pool=pool, seed=3)
        chosen = policy.select(items, posterior, 3).items
        first = action_distribution(policy, items, posterior, slot=0, slate_size=3)
        assert first[chosen[0]] == 1.0
        last = action_distribution(
            policy, items, posterior, slot=2, slate_size=3, exclude=chosen[:2]
        )
        support = np.flatnonzero(last)
        assert support.size == (items.n - 2 if pool is None else pool)
        np.testing.assert_allclose(last[support], 1.0 / support.size)
        empirical = _frequencies(policy, items, posterior, 4_000, slot=2, k=3)
        assert np.all(empirical[last == 0] == 0)
        assert np.abs(empirical - last).max() < 0.05


@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_thompson_distribution_matches_its_selection_frequencies(scale: float) -> None:
    items = _catalog(20, 3)
    posterior = _posterior(items, n_obs=5)
    policy = ThompsonSampling(scale, seed=8)
    pi = action_distribution(policy, items, posterior, draws=20_000, rng=np.random.default_rng(1))
    empirical = _frequencies(policy, items, posterior, 5_000)
    assert pi.sum() == pytest.approx(1.0)
    assert 0.5 * np.abs(pi - empirical).sum() < 0.05  # total variation distance


class _Unknown(Policy):
    """A policy the target module has no distribution for."""

    name = "unknown"

    def _select(
        self,
        items: ItemMatrix,
        posterior: UserPosterior,
        k: int,
        eligible: Eligibility,
        rng: np.random.Generator,
    ) -> Selection:
        """Never called."""
        raise NotImplementedError


def test_refusals() -> None:
    items = _catalog(6, 2)
    posterior = _posterior(items)
    with pytest.raises(InvalidInputError, match="no eligible"):
        action_distribution(Greedy(), items, posterior, allowed=np.zeros(6, dtype=np.bool_))
    with pytest.raises(InvalidInputError, match="slot"):
        action_distribution(Greedy(), items, posterior, slot=2, slate_size=2)
    with pytest.raises(InvalidInputError, match="_Unknown"):
        action_distribution(_Unknown(), items, posterior)
