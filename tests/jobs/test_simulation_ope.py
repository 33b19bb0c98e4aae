"""Off-policy evaluation inside the simulator, against the target's measured on-policy value.

Moderate sizes that still show the acceptance property: 20 seeded logs of 5000 decisions
each (ε-greedy(0.8) logging over 5 candidates, frozen ε-greedy(0.1) target); every IPS, SNIPS
and DR estimate within 10% of the on-policy value, and ≥ 90% of the 95% intervals covering it.
Why 5000: with importance weights up to 0.92 / 0.16 ≈ 5.8, one IPS estimate over 1500 rows has
a standard error near 7% of the value, so the worst of 20 sits at 10-14% by chance alone (seen
when the learner's features changed: 0.116); at 5000 rows it is near 4%.
bench/bench_bandits.py runs the full-size version on ml-100k.
"""

from __future__ import annotations

import numpy as np
import pytest

from jobs.simulation.environment import build_environment
from jobs.simulation.ope_study import (
    ESTIMATORS,
    OpeSetting,
    coverage_study,
    frozen_posteriors,
    on_policy_value,
    replay_study,
)
from jobs.simulation.runner import candidate_mask
from tests.jobs.test_simulation import SMALL, planted_ratings
from velox.policies import make_policy


def test_estimates_from_another_policy_s_logs_match_the_on_policy_value() -> None:
    env = build_environment(planted_ratings(), SMALL, seed=0)
    setting = OpeSetting(logging="egreedy:0.8", candidates=5, n_boot=200)
    report = coverage_study(
        env, setting, rows=5000, repetitions=20, seed=0, on_policy_contexts=3000
    )
    assert 0.3 < report.on_policy_value < 0.9
    for name in ESTIMATORS:
        assert report.max_relative_error[name] <= 0.10, name
        assert report.coverage[name] >= 0.90, name
    assert report.mean_ess["ips"] < 5000  # the logs really come from another policy


def test_the_on_policy_value_is_what_running_the_target_earns() -> None:
    env = build_environment(planted_ratings(), SMALL, seed=1)
    setting = OpeSetting(candidates=5)
    posteriors = frozen_posteriors(env, setting.warmup, seed=1)
    assert not np.allclose(env.new_posterior().mean(), posteriors[0].mean())
    truth = on_policy_value(env, setting, posteriors, 4000, seed=2)
    rng = np.random.default_rng(3)
    target = make_policy(setting.target, seed=3)
    rewards = []
    for user in rng.integers(0, env.cohort, 4000).tolist():
        allowed = candidate_mask(rng, env.items.n, setting.candidates)
        item = target.select(env.items, posteriors[user], 1, allowed=allowed).items[0]
        rewards.append(rng.random() < env.like_probability[user, item])
    assert abs(np.mean(rewards) - truth) < 3 * np.sqrt(truth * (1 - truth) / 4000) + 0.01


def test_replay_of_a_learning_policy_tracks_its_on_policy_value() -> None:
    env = build_environment(planted_ratings(), SMALL, seed=2)
    result = replay_study(env, "linucb", rows=5000, candidates=10, seed=2, n_boot=200)
    assert 350 < result.matched < 650  # about one row in ten is kept
    assert result.estimate.value == pytest.approx(result.on_policy_value, rel=0.1)
