"""The contract every policy keeps, then each policy's own known right answers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr  # type: ignore[import-untyped]

from velox.catalog import ItemMatrix
from velox.errors import DimensionError, InvalidInputError
from velox.policies import (
    EpsilonGreedy,
    Greedy,
    LinUCB,
    Policy,
    Selection,
    ThompsonSampling,
    make_policy,
)
from velox.posterior import UserPosterior
from velox.scoring import score_items, top_k

POLICIES: dict[str, Callable[[int], Policy]] = {
    "greedy": lambda seed: Greedy(seed=seed),
    "egreedy": lambda seed: EpsilonGreedy(0.3, seed=seed),
    "thompson": lambda seed: ThompsonSampling(seed=seed),
    "thompson-scaled": lambda seed: ThompsonSampling(0.3, seed=seed),
    "linucb": lambda seed: LinUCB(1.5, seed=seed),
}


def _catalog(n: int = 200, dim: int = 8, seed: int = 0) -> ItemMatrix:
    rng = np.random.default_rng(seed)
    return ItemMatrix.from_features(rng.normal(size=(n, dim)).astype(np.float32))


def _posterior(items: ItemMatrix, n_obs: int = 30, seed: int = 1) -> UserPosterior:
    rng = np.random.default_rng(seed)
    posterior = UserPosterior.prior(rng.normal(scale=0.1, size=items.dim), 1.0, 0.5)
    for i in rng.integers(0, items.n, size=n_obs):
        posterior.update(items.features[i], rng.normal())
    return posterior


@pytest.fixture(params=sorted(POLICIES))
def make(request: pytest.FixtureRequest) -> Callable[[int], Policy]:
    """A constructor of each policy in turn, taking the seed."""
    return POLICIES[request.param]


def test_contract_shapes_ranges_and_mean_scores(make: Callable[[int], Policy]) -> None:
    items = _catalog()
    posterior = _posterior(items)
    selection = make(0).select(items, posterior, 10)
    assert isinstance(selection, Selection)
    assert selection.items.shape == selection.scores.shape == selection.propensities.shape == (10,)
    assert len(set(selection.items.tolist())) == 10
    assert np.all((selection.propensities > 0) & (selection.propensities <= 1))
    np.testing.assert_allclose(
        selection.scores, score_items(items, posterior.mean())[selection.items], rtol=1e-6
    )


def test_contract_same_seed_same_output(make: Callable[[int], Policy]) -> None:
    items = _catalog()
    posterior = _posterior(items)
    first, second = make(42), make(42)
    for _ in range(5):
        a = first.select(items, posterior, 7)
        b = second.select(items, posterior, 7)
        np.testing.assert_array_equal(a.items, b.items)
        np.testing.assert_array_equal(a.propensities, b.propensities)
    rng_a = make(1).select(items, posterior, 7, rng=np.random.default_rng(9))
    rng_b = make(2).select(items, posterior, 7, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(rng_a.items, rng_b.items)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40))
def test_contract_never_returns_ineligible_items(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    items = _catalog(60, 5, seed)
    posterior = _posterior(items, seed=seed)
    allowed = rng.random(60) < 0.5
    exclude = rng.choice(60, size=10, replace=False)
    eligible = allowed.copy()
    eligible[exclude] = False
    for make in POLICIES.values():
        selection = make(seed).select(items, posterior, k, allowed=allowed, exclude=exclude)
        assert np.all(eligible[selection.items])
        assert selection.items.size == min(k, int(eligible.sum()))
        assert np.all((selection.propensities > 0) & (selection.propensities <= 1))


def test_contract_k_larger_than_the_catalog(make: Callable[[int], Policy]) -> None:
    items = _catalog(12, 4)
    selection = make(3).select(items, _posterior(items), 50, exclude=np.array([0, 5]))
    assert sorted(selection.items.tolist()) == [i for i in range(12) if i not in (0, 5)]
    nothing = make(3).select(items, _posterior(items), 5, allowed=np.zeros(12, dtype=np.bool_))
    assert nothing.items.size == nothing.propensities.size == 0


def test_contract_validates_arguments(make: Callable[[int], Policy]) -> None:
    items = _catalog(20, 4)
    posterior = _posterior(items)
    policy = make(0)
    for k in (0, -3, 2.5, True):
        with pytest.raises(InvalidInputError):
            policy.select(items, posterior, k)  # type: ignore[arg-type]
    with pytest.raises(DimensionError):
        policy.select(items, UserPosterior.prior(np.zeros(5), 1.0), 3)
    with pytest.raises(DimensionError):
        policy.select(items, posterior, 3, allowed=np.ones(19, dtype=np.bool_))
    with pytest.raises(InvalidInputError):
        policy.select(items, posterior, 3, exclude=np.array([20]))


def test_greedy_is_top_k_of_the_mean() -> None:
    items = _catalog()
    posterior = _posterior(items)
    selection = Greedy().select(items, posterior, 10)
    np.testing.assert_array_equal(selection.items, top_k(score_items(items, posterior.mean()), 10))
    np.testing.assert_array_equal(selection.propensities, np.ones(10))


def test_epsilon_greedy_propensities_match_frequencies() -> None:
    """Slot 0 over all draws, slot 1 conditional on slot 0 being the best item; 3 sigma."""
    items = _catalog(8, 3, seed=4)
    posterior = _posterior(items, seed=4)
    policy = EpsilonGreedy(0.4, seed=123)
    n_draws = 10_000
    first = np.empty(n_draws, dtype=np.intp)
    second = np.empty(n_draws, dtype=np.intp)
    claimed: dict[tuple[int, int], float] = {}
    for i in range(n_draws):
        selection = policy.select(items, posterior, 2)
        first[i], second[i] = selection.items
        claimed[(0, int(selection.items[0]))] = float(selection.propensities[0])
        if selection.items[0] == top_k(score_items(items, posterior.mean()), 1)[0]:
            claimed[(1, int(selection.items[1]))] = float(selection.propensities[1])
    best = top_k(score_items(items, posterior.mean()), 1)[0]
    conditioned = second[first == best]
    for (slot, item), p in claimed.items():
        sample = first if slot == 0 else conditioned
        frequency = float(np.mean(sample == item))
        sigma = np.sqrt(p * (1 - p) / sample.size)
        assert abs(frequency - p) <= 3 * sigma, (slot, item, frequency, p)
    assert claimed[(0, int(best))] == pytest.approx(0.6 + 0.4 / 8)
    assert len(claimed) == 8 + 7


def test_thompson_exploration_shrinks_as_the_posterior_tightens() -> None:
    items = _catalog(300, 6, seed=7)
    truth = np.random.default_rng(7).normal(size=6)
    rng = np.random.default_rng(8)

    def spread(n_obs: int) -> tuple[float, float]:
        posterior = UserPosterior.prior(np.zeros(6), 1.0, 0.5)
        for i in rng.integers(0, items.n, size=n_obs):
            posterior.update(items.features[i], float(items.features[i] @ truth))
        greedy = set(Greedy().select(items, posterior, 5).items.tolist())
        policy = ThompsonSampling(seed=1)
        selections = [policy.select(items, posterior, 5) for _ in range(200)]
        overlap = np.mean([len(greedy & set(s.items.tolist())) / 5 for s in selections])
        top_propensity = np.mean([s.propensities[0] for s in selections])
        return float(overlap), float(top_propensity)

    loose, tight = spread(2), spread(2000)
    assert tight[0] > loose[0] and tight[0] > 0.9
    assert tight[1] > loose[1] and tight[1] > 0.9


def test_thompson_propensity_of_a_certain_choice_is_one() -> None:
    items = ItemMatrix.from_features(np.array([[1.0], [0.0], [-1.0]], dtype=np.float32))
    posterior = UserPosterior.prior([10.0], lam=1e6, noise_std=1e-3)
    selection = ThompsonSampling(seed=0).select(items, posterior, 3)
    np.testing.assert_array_equal(selection.items, [0, 1, 2])
    np.testing.assert_array_equal(selection.propensities, np.ones(3))


def test_thompson_draws_come_from_the_scaled_posterior() -> None:
    """Draws have mean m and covariance (scale · noise_std)² A⁻¹; scale 0 draws the mean."""
    items = _catalog(50, 3, seed=2)
    posterior = _posterior(items, n_obs=10, seed=2)
    covariance = posterior.noise_std**2 * np.linalg.inv(posterior.precision())
    draws = ThompsonSampling(0.4).draw_weights(posterior, 40_000, np.random.default_rng(3))
    np.testing.assert_allclose(draws.mean(axis=1), posterior.mean(), atol=0.02)
    np.testing.assert_allclose(np.cov(draws), 0.4**2 * covariance, rtol=0.05, atol=1e-4)
    frozen = ThompsonSampling(0.0).draw_weights(posterior, 3, np.random.default_rng(3))
    np.testing.assert_array_equal(frozen, np.repeat(posterior.mean()[:, None], 3, axis=1))


@pytest.mark.parametrize("scale", [0.5, 1.0])
def test_thompson_scaled_choice_probability_matches_the_closed_form(scale: float) -> None:
    """Two items: item 0 comes first with probability Φ(Δᵀm / (scale · noise_std · ‖SᵀΔ‖)).

    Both the claimed propensities and the observed frequency must match it, and the two
    scales give answers far enough apart (0.76 vs 0.64) that this tells them apart.
    """
    items = ItemMatrix.from_features(np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    posterior = UserPosterior.prior([0.5, 0.0], lam=1.0, noise_std=1.0)  # A⁻¹ = I, Δ = [1, -1]
    expected = float(ndtr(0.5 / (scale * np.sqrt(2.0))))
    policy = ThompsonSampling(scale, seed=11, n_draws=2_000)
    selections = [policy.select(items, posterior, 1) for _ in range(3_000)]
    first = np.array([int(s.items[0]) for s in selections])
    claimed = np.array([float(s.propensities[0]) for s in selections])
    sigma = np.sqrt(expected * (1 - expected) / first.size)
    assert abs(np.mean(first == 0) - expected) < 4 * sigma
    # Each claim is a 2 000-draw estimate of the probability of the item actually shown.
    np.testing.assert_allclose(claimed[first == 0].mean(), expected, atol=0.01)
    np.testing.assert_allclose(claimed[first == 1].mean(), 1 - expected, atol=0.01)


def test_thompson_scale_zero_is_greedy() -> None:
    items = _catalog()
    posterior = _posterior(items)
    selection = ThompsonSampling(0.0, seed=4).select(items, posterior, 10)
    np.testing.assert_array_equal(selection.items, Greedy().select(items, posterior, 10).items)
    np.testing.assert_array_equal(selection.propensities, np.ones(10))
    for scale in (-0.1, float("nan"), float("inf")):
        with pytest.raises(InvalidInputError):
            ThompsonSampling(scale)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 80),
    st.floats(0.0, 5.0),
    st.integers(1, 15),
    st.booleans(),
)
def test_linucb_pruning_is_exact(seed: int, n_obs: int, alpha: float, k: int, filt: bool) -> None:
    items = _catalog(400, 6, seed)
    posterior = _posterior(items, n_obs, seed)
    allowed = np.random.default_rng(seed).random(400) < 0.5 if filt else None
    selection = LinUCB(alpha).select(items, posterior, k, allowed=allowed)
    means = score_items(items, posterior.mean())
    ucb = means + alpha * posterior.std(items.features)
    expected = top_k(ucb, k, allowed=allowed)
    # Exact UCB values agree; the item order may differ only between (near-)equal values.
    np.testing.assert_allclose(ucb[selection.items], ucb[expected], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(selection.propensities, np.ones(selection.items.size))


def test_linucb_alpha_zero_is_greedy() -> None:
    items = _catalog()
    posterior = _posterior(items)
    np.testing.assert_array_equal(
        LinUCB(0.0).select(items, posterior, 10).items,
        Greedy().select(items, posterior, 10).items,
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("greedy", Greedy(seed=5)),
        ("egreedy:0.1", EpsilonGreedy(0.1, seed=5)),
        ("egreedy", EpsilonGreedy(0.1, seed=5)),
        (" thompson ", ThompsonSampling(seed=5)),
        ("thompson:0.5", ThompsonSampling(0.5, seed=5)),
        ("thompson:1", ThompsonSampling(1.0, seed=5)),
        ("linucb:1.5", LinUCB(1.5, seed=5)),
        ("linucb", LinUCB(1.0, seed=5)),
    ],
)
def test_make_policy_parses_specs(spec: str, expected: Policy) -> None:
    policy = make_policy(spec, seed=5)
    assert type(policy) is type(expected)
    assert policy.params == expected.params
    assert repr(policy) == repr(expected)
    assert make_policy(policy.spec, seed=5).params == policy.params


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "random",
        "greedy:1",
        "thompson:-1",
        "thompson:abc",
        "thompson:inf",
        "egreedy:",
        "egreedy:abc",
        "egreedy:1.5",
        "egreedy:-0.1",
        "egreedy:nan",
        "linucb:-1",
        "linucb:inf",
        "LinUCB:1",
        "egreedy:0.1:2",
    ],
)
def test_make_policy_rejects_junk(spec: str) -> None:
    with pytest.raises(InvalidInputError):
        make_policy(spec)
