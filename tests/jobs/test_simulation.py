"""The simulator: ALS and head-prior fits on planted data, the hidden world, the runner, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.special import ndtr  # type: ignore[import-untyped]

from jobs.simulation.environment import SimulationSetting, build_environment
from jobs.simulation.factorize import fit_biased_als
from jobs.simulation.head_prior import fit_head_prior
from jobs.simulation.ratings import Ratings
from jobs.simulation.runner import run_policy
from jobs.simulation.tuning import compare_policies, tune
from velox.errors import InvalidInputError

SMALL = SimulationSetting(
    cohort=20, world_rank=3, learner_rank=3, reg=0.05, iterations=10, like_threshold=4.0
)


def planted_ratings(
    n_users: int = 150, n_items: int = 120, density: float = 0.3, noise: float = 0.3, seed: int = 0
) -> Ratings:
    """Ratings from a planted rank-3 biased model, with Gaussian noise, on a random mask."""
    rng = np.random.default_rng(seed)
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    u, v = rng.normal(0, 0.6, (n_users, 3)), rng.normal(0, 0.6, (n_items, 3))
    bu, bi = rng.normal(0, 0.3, n_users), rng.normal(0, 0.5, n_items)
    clean = 3.5 + bu[users] + bi[items] + np.einsum("ij,ij->i", u[users], v[items])
    return Ratings(
        users=users.astype(np.int64),
        items=items.astype(np.int64),
        values=clean + rng.normal(0, noise, clean.size),
        user_ids=[f"u{k}" for k in range(n_users)],
        item_ids=[f"i{k}" for k in range(n_items)],
    )


def test_als_recovers_a_noiseless_planted_model() -> None:
    ratings = planted_ratings(noise=0.0, density=0.5)
    mask = np.random.default_rng(1).random(ratings.values.size) < 0.8
    fit = fit_biased_als(
        ratings.users[mask], ratings.items[mask], ratings.values[mask], 150, 120,
        rank=3, reg=0.002, iterations=40,
    )  # fmt: skip
    held = ~mask
    error = fit.predict(ratings.users[held], ratings.items[held]) - ratings.values[held]
    assert np.sqrt(np.mean(error**2)) < 0.1  # the ratings themselves spread ~0.9
    folded = fit.item_features()[ratings.items].astype(np.float64)
    scores = np.einsum("ij,ij->i", folded, fit.user_weights()[ratings.users])
    np.testing.assert_allclose(scores, fit.predict(ratings.users, ratings.items), atol=1e-5)
    assert np.all(np.abs(fit.item_features()[:, :3].mean(axis=0)) < 1.0)


def test_als_refuses_nonsense() -> None:
    empty = np.zeros(0, dtype=np.int64)
    with pytest.raises(InvalidInputError):
        fit_biased_als(empty, empty, np.zeros(0), 3, 3)
    with pytest.raises(InvalidInputError):
        fit_biased_als(np.array([0]), np.array([0]), np.array([1.0]), 1, 1, rank=0)


def test_head_prior_recovers_a_planted_population_and_its_spread() -> None:
    rng = np.random.default_rng(2)
    features = rng.normal(size=(200, 4))
    w_true = np.array([0.5, -0.2, 0.1, 0.3])
    users = np.repeat(np.arange(300), 40)
    items = rng.integers(0, 200, users.size)
    # Users spread around w_true with sd tau = 0.1, noise sd sigma = 0.1: the best λ ≈ σ²/τ² = 1.
    weights = w_true + rng.normal(0, 0.1, (300, 4))
    labels = np.einsum("ij,ij->i", features[items], weights[users])
    labels = labels + rng.normal(0, 0.1, users.size)
    head = fit_head_prior(features, users, items, labels)
    np.testing.assert_allclose(head.w0, w_true, atol=0.02)
    assert head.lam in (0.3, 1.0, 3.0)
    assert 0.1 <= head.noise_std < 0.15
    assert min(head.validation_rmse.values()) == head.validation_rmse[head.lam]
    with pytest.raises(InvalidInputError):
        fit_head_prior(features, users, items, np.ones(users.size))


def test_the_learner_never_sees_the_held_out_cohort() -> None:
    ratings = planted_ratings()
    env = build_environment(ratings, SMALL, seed=3)
    cohort = np.isin(np.array(ratings.user_ids), env.cohort_ids)
    scrambled = ratings.values.copy()
    rows = cohort[ratings.users]
    scrambled[rows] = np.random.default_rng(0).permutation(scrambled[rows])
    other = build_environment(replace(ratings, values=scrambled), SMALL, seed=3)
    np.testing.assert_array_equal(other.items.features, env.items.features)
    np.testing.assert_array_equal(other.head.w0, env.head.w0)
    assert not np.allclose(other.like_probability, env.like_probability)
    assert env.like_probability.shape == (20, 120)
    assert np.all((env.like_probability >= 0) & (env.like_probability <= 1))
    with pytest.raises(InvalidInputError):
        build_environment(ratings, replace(SMALL, cohort=150), seed=0)
    with pytest.raises(InvalidInputError):
        build_environment(ratings, replace(SMALL, slate_size=5, candidates=3), seed=0)


def test_the_learner_rank_sets_the_feature_dimension_and_leaves_the_world_alone() -> None:
    ratings = planted_ratings()
    wide = build_environment(ratings, replace(SMALL, learner_rank=6), seed=3)
    narrow = build_environment(ratings, replace(SMALL, learner_rank=2), seed=3)
    # [v_i, s y_i, mu + b_i, 1], as `velox train` publishes
    assert (wide.items.dim, narrow.items.dim) == (2 * 6 + 2, 2 * 2 + 2)
    assert wide.head.w0.shape == (14,) and narrow.head.w0.shape == (6,)
    np.testing.assert_array_equal(wide.like_probability, narrow.like_probability)
    np.testing.assert_array_equal(wide.cohort_ids, narrow.cohort_ids)
    # The world's rank changes the world and not the learner's features.
    other_world = build_environment(ratings, replace(SMALL, learner_rank=6, world_rank=5), seed=3)
    np.testing.assert_array_equal(other_world.items.features, wide.items.features)
    assert not np.allclose(other_world.like_probability, wide.like_probability)
    assert SimulationSetting().learner_rank == 16  # what `velox train` publishes by default
    with pytest.raises(InvalidInputError):
        build_environment(ratings, replace(SMALL, learner_rank=0), seed=3)


def test_world_prior_labels_are_drawn_from_the_hidden_model() -> None:
    # Integer ratings above 4.0 are 5s only; the hidden model's probit spreads the rounding as
    # noise, so likes are about twice as frequent in its world as in the recorded ratings.
    ratings = planted_ratings()
    ratings = replace(ratings, values=np.round(ratings.values))
    recorded = build_environment(ratings, SMALL, seed=3)
    world = build_environment(ratings, replace(SMALL, prior_labels="world"), seed=3)
    np.testing.assert_array_equal(world.items.features, recorded.items.features)
    np.testing.assert_array_equal(world.like_probability, recorded.like_probability)
    train = ~np.isin(np.array(ratings.user_ids), world.cohort_ids)[ratings.users]
    users, items = ratings.users[train], ratings.items[train]
    hidden = fit_biased_als(
        ratings.users, ratings.items, ratings.values, ratings.n_users, ratings.n_items,
        rank=SMALL.world_rank, reg=SMALL.reg, iterations=SMALL.iterations, seed=3,
    )  # fmt: skip
    sigma = np.sqrt(np.mean((ratings.values - hidden.predict(ratings.users, ratings.items)) ** 2))
    liked = ndtr((hidden.predict(users, items) - SMALL.like_threshold) / sigma).mean()
    recorded_rate = (ratings.values[train] > SMALL.like_threshold).mean()
    assert liked - recorded_rate > 0.1
    # The pooled fit has a constant feature, so its mean prediction is the mean label.
    rows = world.items.features[items].astype(np.float64)
    assert abs((rows @ world.head.w0).mean() - liked) < 0.015
    assert abs((rows @ recorded.head.w0).mean() - recorded_rate) < 1e-9
    with pytest.raises(InvalidInputError):
        build_environment(ratings, replace(SMALL, prior_labels="cohort"), seed=3)


def test_runs_are_reproducible_and_share_visitors_and_draws() -> None:
    env = build_environment(planted_ratings(), SMALL, seed=4)
    first = run_policy(env, "thompson", steps=300, seed=4)
    again = run_policy(env, "thompson", steps=300, seed=4)
    np.testing.assert_array_equal(first.shown, again.shown)
    np.testing.assert_array_equal(first.rewards, again.rewards)
    other = run_policy(env, "greedy", steps=300, seed=4)
    np.testing.assert_array_equal(first.users, other.users)
    # Regret is the best available expected reward minus the expected reward shown.
    best = np.sort(env.like_probability, axis=1)[:, -1]
    np.testing.assert_allclose(first.regret + first.expected, best[first.users])
    assert np.all(first.regret >= -1e-12)
    summary = first.summary()
    assert summary["steps"] == 300 and summary["cumulative_reward"] == first.rewards.sum()


def test_no_repeat_slates_and_single_candidates() -> None:
    ratings = planted_ratings()
    no_repeat = build_environment(ratings, replace(SMALL, repeat=False, slate_size=3), seed=5)
    run = run_policy(no_repeat, "slate", steps=400, seed=5)
    for user in range(no_repeat.cohort):
        shown = run.shown[run.users == user].ravel()
        assert shown.size == np.unique(shown).size  # never twice to the same user
    assert run.rewards.max() <= 3
    tiny = planted_ratings(n_users=60, n_items=30, density=0.6)
    exhausted = build_environment(tiny, replace(SMALL, cohort=2, repeat=False), seed=0)
    late = run_policy(exhausted, "greedy", steps=100, seed=0)
    assert np.all(late.shown[-5:] == -1) and np.all(late.regret[-5:] == 0.0)  # nothing left
    single = build_environment(ratings, replace(SMALL, candidates=1), seed=5)
    forced = run_policy(single, "linucb", steps=200, seed=5)
    np.testing.assert_allclose(forced.regret, 0.0, atol=1e-12)  # one candidate: no choice


def test_learning_beats_uniform_exploration() -> None:
    env = build_environment(planted_ratings(), SMALL, seed=6)
    uniform = run_policy(env, "egreedy:1.0", steps=3000, seed=6)
    learner = run_policy(env, "linucb", steps=3000, seed=6)
    assert learner.expected.sum() > 1.3 * uniform.expected.sum()
    late, early = learner.regret[1500:].mean(), learner.regret[:1500].mean()
    assert late < early


def test_tuning_picks_the_best_grid_value_and_scale_zero_thompson_is_greedy() -> None:
    ratings = planted_ratings()
    best, means = tune(ratings, SMALL, "thompson", (0.0, 0.5, 1.0), seeds=(0, 1), steps=300)
    assert set(means) == {0.0, 0.5, 1.0} and means[best] == max(means.values())
    # Worlds and reward draws depend on the seed alone, and Thompson sampling with scale 0
    # ranks by the posterior mean: it must earn exactly what greedy earns.
    greedy = compare_policies(ratings, SMALL, ["greedy"], seeds=(0, 1), steps=300)["greedy"]
    assert means[0.0] == greedy.cumulative_reward


def test_velox_simulate_prints_json_and_draws_the_plot(tmp_path: Path) -> None:
    plot = tmp_path / "figure.png"
    command = [
        sys.executable, "-c", "from velox.cli import main; main()", "simulate",
        "--dataset", "synthetic", "--steps", "300", "--cohort", "20", "--seed", "1",
        "--policy", "greedy", "--policy", "linucb", "--plot", str(plot),
    ]  # fmt: skip
    env = {**os.environ, "VELOX_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["policies"]) == {"greedy", "linucb"}
    for summary in report["policies"].values():
        assert summary["steps"] == 300
        assert {"cumulative_reward", "regret", "expected_reward"} <= set(summary)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run(
        [*command[:3], "simulate", "--dataset", "nope", "--steps", "10"],
        check=False, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 1 and "unknown dataset" in bad.stderr
