"""The slate policy (velox.policies.slate): exploit k-1 slots, explore the last, exact propensities.

Named test_ope_* because the slate policy was built with off-policy evaluation (issue 5).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velox.catalog import ItemMatrix
from velox.errors import InvalidInputError
from velox.policies import make_policy
from velox.policies.slate import SlatePolicy
from velox.posterior import UserPosterior
from velox.scoring import score_items, top_k


def _setup(n: int = 30, dim: int = 4, seed: int = 0) -> tuple[ItemMatrix, UserPosterior]:
    rng = np.random.default_rng(seed)
    items = ItemMatrix.from_features(rng.normal(size=(n, dim)).astype(np.float32))
    return items, UserPosterior.prior(rng.normal(size=dim), 1.0, 0.5)


def test_first_slots_are_the_greedy_order_and_the_last_explores() -> None:
    items, posterior = _setup()
    scores = score_items(items, posterior.mean())
    selection = SlatePolicy(seed=1).select(items, posterior, 4)
    np.testing.assert_array_equal(selection.items[:3], top_k(scores, 3))
    assert selection.items[3] not in selection.items[:3]
    np.testing.assert_allclose(selection.propensities, [1.0, 1.0, 1.0, 1.0 / 27])
    np.testing.assert_allclose(selection.scores, scores[selection.items], rtol=1e-6)


@pytest.mark.parametrize("pool", [None, 4])
def test_last_slot_propensity_matches_empirical_frequencies(pool: int | None) -> None:
    items, posterior = _setup(12, 3)
    exclude = np.array([5])
    policy = SlatePolicy(pool=pool, seed=2)
    draws = 10_000
    counts = np.zeros(items.n)
    for _ in range(draws):
        selection = policy.select(items, posterior, 3, exclude=exclude)
        counts[selection.items[2]] += 1
    propensity = selection.propensities[2]
    assert propensity == pytest.approx(1.0 / (4 if pool is not None else 12 - 1 - 2))
    hit = counts[counts > 0] / draws
    assert hit.size == round(1.0 / propensity)
    sigma = np.sqrt(propensity * (1 - propensity) / draws)
    assert np.all(np.abs(hit - propensity) <= 3 * sigma)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(0, 2**32 - 1), st.integers(1, 25), st.sampled_from([None, 1, 3, 50]))
def test_never_ineligible_never_repeated(seed: int, k: int, pool: int | None) -> None:
    rng = np.random.default_rng(seed)
    items, posterior = _setup(20, 3, seed)
    allowed = rng.random(20) < 0.6
    exclude = rng.choice(20, size=4, replace=False)
    eligible = allowed.copy()
    eligible[exclude] = False
    selection = SlatePolicy(pool=pool, seed=seed).select(
        items, posterior, k, allowed=allowed, exclude=exclude
    )
    assert np.all(eligible[selection.items])
    assert selection.items.size == len(set(selection.items.tolist())) == min(k, eligible.sum())
    assert np.all((selection.propensities > 0) & (selection.propensities <= 1))


def test_same_seed_same_slates_and_k_one_explores() -> None:
    items, posterior = _setup()
    a, b = SlatePolicy(seed=9), SlatePolicy(seed=9)
    for _ in range(5):
        np.testing.assert_array_equal(
            a.select(items, posterior, 5).items, b.select(items, posterior, 5).items
        )
    single = SlatePolicy(seed=0).select(items, posterior, 1)
    assert single.propensities.tolist() == [1.0 / 30]
    empty = SlatePolicy().select(items, posterior, 3, allowed=np.zeros(30, dtype=np.bool_))
    assert empty.items.size == 0


def test_make_policy_builds_it_and_round_trips_the_spec() -> None:
    assert repr(make_policy("slate", seed=3)) == "SlatePolicy(seed=3)"
    policy = make_policy("slate:25", seed=3)
    assert isinstance(policy, SlatePolicy) and policy.pool == 25
    assert make_policy(policy.spec).params == {"pool": 25}
    for junk in ("slate:0", "slate:x", "slate:2.5", "slate:-1"):
        with pytest.raises(InvalidInputError):
            make_policy(junk)
    with pytest.raises(InvalidInputError):
        SlatePolicy(pool=0)


def test_docstring_example_runs() -> None:
    import doctest

    import velox.policies.slate

    result = doctest.testmod(velox.policies.slate)
    assert result.attempted > 0 and result.failed == 0
