"""Off-policy estimators: closed forms, a planted bandit with a known value, input checks."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velox.errors import DimensionError, InvalidInputError, NonFiniteError
from velox.ope import Estimate, bootstrap_ratio_ci, doubly_robust, ips, kish_ess, replay, snips

LOGGING = np.array([0.5, 0.3, 0.2])
TARGET = np.array([0.1, 0.1, 0.8])
LIKE = np.array([0.2, 0.5, 0.8])
TRUE_VALUE = float(TARGET @ LIKE)  # 0.71


def _planted_log(n: int, seed: int) -> tuple[np.ndarray, ...]:
    """n decisions of the logging policy over three arms with Bernoulli rewards."""
    rng = np.random.default_rng(seed)
    actions = rng.choice(3, size=n, p=LOGGING)
    rewards = (rng.random(n) < LIKE[actions]).astype(np.float64)
    return actions, LOGGING[actions], TARGET[actions], rewards


def test_public_api_is_pinned() -> None:
    module = importlib.import_module("velox.ope")
    assert sorted(module.__all__) == sorted(
        ["Estimate", "bootstrap_ratio_ci", "doubly_robust", "ips", "kish_ess", "replay", "snips"]
    )


@pytest.mark.parametrize("name", ["ips", "snips", "doubly_robust", "replay"])
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(f"velox.ope.{name}"))
    assert result.attempted > 0 and result.failed == 0


def test_on_policy_logs_give_the_sample_mean_exactly() -> None:
    _, propensity, _, reward = _planted_log(500, seed=1)
    for estimator in (ips, snips):
        estimate = estimator(propensity, propensity, reward, n_boot=50)
        assert estimate.value == pytest.approx(reward.mean(), rel=1e-12)
        assert estimate.ess == pytest.approx(500.0)


def test_closed_forms_on_a_tiny_log() -> None:
    propensity, target, reward = [0.5, 0.25, 1.0], [1.0, 0.5, 0.0], [1.0, 2.0, 3.0]
    # weights 2, 2, 0: IPS = (2 + 4 + 0) / 3, SNIPS = 6 / 4, Kish = 16 / 8.
    assert ips(propensity, target, reward, n_boot=10).value == pytest.approx(2.0)
    assert snips(propensity, target, reward, n_boot=10).value == pytest.approx(1.5)
    assert ips(propensity, target, reward, n_boot=10).ess == pytest.approx(2.0)
    # DR with a perfect reward model is its direct-method term whatever the weights.
    perfect = doubly_robust(propensity, target, reward, reward, [0.7, 0.7, 0.7], n_boot=10)
    assert perfect.value == pytest.approx(0.7)


@pytest.mark.parametrize("estimator", ["ips", "snips", "dr"])
def test_planted_bandit_value_is_recovered_and_covered(estimator: str) -> None:
    actions, propensity, target, reward = _planted_log(20_000, seed=7)
    if estimator == "ips":
        estimate = ips(propensity, target, reward, seed=3)
    elif estimator == "snips":
        estimate = snips(propensity, target, reward, seed=3)
    else:
        model = np.array([0.3, 0.4, 0.6])  # a wrong reward model: DR stays unbiased
        direct = np.full(actions.size, TARGET @ model)
        estimate = doubly_robust(propensity, target, reward, model[actions], direct, seed=3)
    assert estimate.value == pytest.approx(TRUE_VALUE, rel=0.05)
    assert estimate.covers(TRUE_VALUE)
    assert estimate.ci_low < estimate.value < estimate.ci_high
    assert estimate.n == 20_000


def test_intervals_cover_the_truth_in_most_seeded_repetitions() -> None:
    covered = 0
    for rep in range(40):
        _, propensity, target, reward = _planted_log(2_000, seed=100 + rep)
        covered += ips(propensity, target, reward, n_boot=400, seed=rep).covers(TRUE_VALUE)
    assert covered >= 34  # nominal 95%: 38 expected, binomial sd ~1.4


def test_doubly_robust_with_a_good_model_is_tighter_than_ips() -> None:
    actions, propensity, target, reward = _planted_log(5_000, seed=11)
    plain = ips(propensity, target, reward, seed=1)
    robust = doubly_robust(propensity, target, reward, LIKE[actions], np.full(5_000, TRUE_VALUE))
    # Standard deviations per row: IPS sqrt(2.077), DR sqrt(0.524) -> width ratio 0.50.
    assert robust.ci_high - robust.ci_low < 0.6 * (plain.ci_high - plain.ci_low)


def test_replay_keeps_only_matches() -> None:
    rng = np.random.default_rng(5)
    logged = rng.integers(0, 4, 8_000)  # uniform logging over 4 arms
    like = np.array([0.1, 0.2, 0.3, 0.9])
    reward = (rng.random(8_000) < like[logged]).astype(np.float64)
    estimate = replay(logged, np.full(8_000, 3), reward, seed=2)
    assert estimate.ess == float(np.sum(logged == 3))
    assert estimate.value == pytest.approx(reward[logged == 3].mean())
    assert estimate.covers(0.9)


def test_replay_with_no_match_is_nan_not_an_error() -> None:
    estimate = replay([1, 2], [0, 0], [1.0, 0.0], n_boot=20)
    assert np.isnan(estimate.value) and np.isnan(estimate.ci_low) and estimate.ess == 0.0


def test_bootstrap_is_seeded_and_constant_data_has_a_point_interval() -> None:
    values = np.random.default_rng(0).random(300)
    assert bootstrap_ratio_ci(values, seed=4) == bootstrap_ratio_ci(values, seed=4)
    assert bootstrap_ratio_ci(values, seed=4) != bootstrap_ratio_ci(values, seed=5)
    low, high = bootstrap_ratio_ci(np.full(50, 0.25), n_boot=100)
    assert low == pytest.approx(0.25) and high == pytest.approx(0.25)


def test_interval_narrows_like_one_over_root_n() -> None:
    rng = np.random.default_rng(9)
    small = bootstrap_ratio_ci(rng.random(1_000), seed=1)
    large = bootstrap_ratio_ci(rng.random(16_000), seed=1)
    ratio = (small[1] - small[0]) / (large[1] - large[0])
    assert 3.0 < ratio < 5.5  # sqrt(16) = 4


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.floats(0.01, 100.0), min_size=1, max_size=50))
def test_kish_ess_lies_between_one_and_n(weights: list[float]) -> None:
    ess = kish_ess(np.array(weights))
    assert 1.0 - 1e-9 <= ess <= len(weights) + 1e-9


def test_kish_ess_of_equal_and_of_one_hot_weights() -> None:
    assert kish_ess(np.full(7, 3.0)) == pytest.approx(7.0)
    assert kish_ess(np.array([0.0, 5.0, 0.0])) == pytest.approx(1.0)
    assert kish_ess(np.zeros(4)) == 0.0


@pytest.mark.parametrize(
    ("propensity", "target", "reward", "error"),
    [
        ([0.0, 0.5], [0.5, 0.5], [1.0, 1.0], InvalidInputError),
        ([1.5, 0.5], [0.5, 0.5], [1.0, 1.0], InvalidInputError),
        ([0.5, 0.5], [1.2, 0.5], [1.0, 1.0], InvalidInputError),
        ([0.5, 0.5], [0.5], [1.0, 1.0], DimensionError),
        ([0.5, 0.5], [0.5, 0.5], [1.0, float("nan")], NonFiniteError),
        ([[0.5, 0.5]], [0.5, 0.5], [1.0, 1.0], DimensionError),
        ([], [], [], InvalidInputError),
    ],
)
def test_bad_input_is_refused_by_name(
    propensity: list[float], target: list[float], reward: list[float], error: type[Exception]
) -> None:
    for estimator in (ips, snips):
        with pytest.raises(error):
            estimator(propensity, target, reward)


def test_bad_bootstrap_arguments_and_lengths() -> None:
    with pytest.raises(InvalidInputError):
        ips([0.5], [0.5], [1.0], n_boot=0)
    with pytest.raises(InvalidInputError):
        ips([0.5], [0.5], [1.0], confidence=1.0)
    with pytest.raises(DimensionError):
        doubly_robust([0.5], [0.5], [1.0], [0.2, 0.3], [0.1])
    with pytest.raises(DimensionError):
        replay([1, 2], [1], [1.0, 0.0])


def test_estimate_serialises() -> None:
    estimate = Estimate("ips", 0.5, 0.4, 0.6, 0.95, 10.0, 20)
    assert estimate.as_dict()["ci_high"] == 0.6 and estimate.covers(0.6)
    assert not estimate.covers(0.61)
