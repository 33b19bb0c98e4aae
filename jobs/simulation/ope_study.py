"""Off-policy evaluation inside the simulator, where the true value of a policy is known.

A stationary target policy (its model frozen: per-user posteriors after `warmup` random
feedbacks each from the hidden world) is evaluated from logs of a different logging policy
(the same kind of policy over the unpersonalised population prior). Each logged decision:
a held-out user visits, a retrieval stage offers `candidates` random items, the logging
policy picks one (its propensity logged), the hidden model draws the reward. IPS, SNIPS and
DR then estimate the target's value from those rows alone; the reward model for DR is the
target's own posterior-mean score clipped to [0, 1].

The target's on-policy value is measured on fresh contexts: the mean over them of
Σ_a π(a|x)·p(x, a), the expected reward of running the target there (no reward noise).

Replay (for learning policies) needs uniformly random logging: `replay_study` logs uniform
picks, replays a learning policy over them, and compares with that policy run on-policy for
as many steps as replay kept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from jobs.simulation.environment import Environment
from jobs.simulation.runner import candidate_mask, run_policy
from velox.ope import Estimate, doubly_robust, ips, replay, snips
from velox.ope.target import action_distribution
from velox.policies import make_policy
from velox.posterior import UserPosterior
from velox.scoring import score_items

FloatArray = NDArray[np.float64]
ESTIMATORS = ("ips", "snips", "dr")


@dataclass(frozen=True)
class OpeSetting:
    """Which logging and target policies, and how contexts and the target's model are made."""

    logging: str = "egreedy:0.5"
    target: str = "egreedy:0.1"
    candidates: int = 10
    warmup: int = 30
    n_boot: int = 1000


@dataclass(frozen=True)
class OpeTrial:
    """One log's estimates next to the target's measured on-policy value."""

    on_policy_value: float
    estimates: dict[str, Estimate]


def frozen_posteriors(env: Environment, warmup: int, seed: int) -> list[UserPosterior]:
    """Each held-out user's posterior after `warmup` uniformly random items and their rewards."""
    rng = np.random.default_rng([seed, 3])
    features = env.items.features.astype(np.float64)
    posteriors = []
    for user in range(env.cohort):
        posterior = env.new_posterior()
        for item in rng.integers(0, env.items.n, warmup).tolist():
            liked = rng.random() < env.like_probability[user, item]
            posterior.update(features[item], float(liked))
        posteriors.append(posterior)
    return posteriors


def on_policy_value(
    env: Environment, setting: OpeSetting, posteriors: list[UserPosterior], n: int, seed: int
) -> float:
    """Mean expected reward of the target over `n` fresh contexts (visitor + candidates)."""
    rng = np.random.default_rng([seed, 4])
    target = make_policy(setting.target, seed=seed)
    total = 0.0
    for user in rng.integers(0, env.cohort, n).tolist():
        allowed = candidate_mask(rng, env.items.n, setting.candidates)
        pi = action_distribution(target, env.items, posteriors[user], allowed=allowed, rng=rng)
        total += float(pi @ env.like_probability[user])
    return total / n


def estimate_from_logs(
    env: Environment, setting: OpeSetting, posteriors: list[UserPosterior], n: int, seed: int
) -> dict[str, Estimate]:
    """Log `n` decisions of the logging policy and estimate the target's value from them."""
    rng = np.random.default_rng([seed, 5])
    logging = make_policy(setting.logging, seed=seed)
    target = make_policy(setting.target, seed=seed)
    population = env.new_posterior()
    columns = np.zeros((5, n))  # propensity, π(a|x), reward, r̂(x, a), Σ π r̂
    for row, user in enumerate(rng.integers(0, env.cohort, n).tolist()):
        allowed = candidate_mask(rng, env.items.n, setting.candidates)
        shown = logging.select(env.items, population, 1, allowed=allowed)
        item = int(shown.items[0])
        pi = action_distribution(target, env.items, posteriors[user], allowed=allowed, rng=rng)
        predicted = np.clip(score_items(env.items, posteriors[user].mean()), 0.0, 1.0)
        liked = rng.random() < env.like_probability[user, item]
        columns[:, row] = (
            shown.propensities[0], pi[item], float(liked), predicted[item], pi @ predicted
        )  # fmt: skip
    propensity, target_probability, reward, reward_hat, direct = columns
    boot = {"n_boot": setting.n_boot, "seed": seed}
    return {
        "ips": ips(propensity, target_probability, reward, **boot),
        "snips": snips(propensity, target_probability, reward, **boot),
        "dr": doubly_robust(propensity, target_probability, reward, reward_hat, direct, **boot),
    }


@dataclass(frozen=True)
class CoverageReport:
    """Per estimator over repeated logs: worst relative error, mean CI width, coverage."""

    on_policy_value: float
    repetitions: int
    rows: int
    max_relative_error: dict[str, float]
    mean_relative_error: dict[str, float]
    coverage: dict[str, float]
    mean_ci_width: dict[str, float]
    mean_ess: dict[str, float]


def coverage_study(
    env: Environment,
    setting: OpeSetting,
    *,
    rows: int,
    repetitions: int,
    seed: int,
    on_policy_contexts: int = 20_000,
) -> CoverageReport:
    """Repeat logging + estimation with seeds seed..seed+repetitions-1 against one true value."""
    posteriors = frozen_posteriors(env, setting.warmup, seed)
    truth = on_policy_value(env, setting, posteriors, on_policy_contexts, seed + 10_000)
    trials = [
        OpeTrial(truth, estimate_from_logs(env, setting, posteriors, rows, seed + rep))
        for rep in range(repetitions)
    ]
    errors = {e: [abs(t.estimates[e].value - truth) / truth for t in trials] for e in ESTIMATORS}
    return CoverageReport(
        on_policy_value=truth,
        repetitions=repetitions,
        rows=rows,
        max_relative_error={e: float(np.max(errors[e])) for e in ESTIMATORS},
        mean_relative_error={e: float(np.mean(errors[e])) for e in ESTIMATORS},
        coverage={
            e: float(np.mean([t.estimates[e].covers(truth) for t in trials])) for e in ESTIMATORS
        },
        mean_ci_width={
            e: float(np.mean([t.estimates[e].ci_high - t.estimates[e].ci_low for t in trials]))
            for e in ESTIMATORS
        },
        mean_ess={e: float(np.mean([t.estimates[e].ess for t in trials])) for e in ESTIMATORS},
    )


@dataclass(frozen=True)
class ReplayResult:
    """Replay's estimate of a learning policy next to its on-policy value over as many steps."""

    estimate: Estimate
    on_policy_value: float
    matched: int


def replay_study(
    env: Environment,
    spec: str,
    *,
    rows: int,
    candidates: int,
    seed: int,
    n_boot: int = 1000,
    on_policy_runs: int = 3,
) -> ReplayResult:
    """Log `rows` uniform picks among `candidates` items, replay `spec` over them, and compare.

    The replayed policy learns (posterior updates) from exactly the rows it matches, as in
    Li et al.; its on-policy value is the mean expected reward of the same policy run for as
    many steps as replay matched, averaged over `on_policy_runs` seeds.
    """
    rng = np.random.default_rng([seed, 6])
    features = env.items.features.astype(np.float64)
    policy = make_policy(spec, seed=seed)
    posteriors: dict[int, UserPosterior] = {}
    logged = np.empty(rows, dtype=np.int64)
    chosen = np.empty(rows, dtype=np.int64)
    rewards = np.empty(rows)
    for row, user in enumerate(rng.integers(0, env.cohort, rows).tolist()):
        pool = rng.choice(env.items.n, candidates, replace=False)
        allowed = np.zeros(env.items.n, dtype=np.bool_)
        allowed[pool] = True
        logged[row] = pool[rng.integers(candidates)]
        rewards[row] = float(rng.random() < env.like_probability[user, logged[row]])
        posterior = posteriors.get(user) or posteriors.setdefault(user, env.new_posterior())
        chosen[row] = policy.select(env.items, posterior, 1, allowed=allowed).items[0]
        if chosen[row] == logged[row]:
            posterior.update(features[logged[row]], rewards[row])
    estimate = replay(logged, chosen, rewards, n_boot=n_boot, seed=seed)
    matched = int(estimate.ess)
    pooled = replace(env, setting=replace(env.setting, candidates=candidates, slate_size=1))
    values = [
        run_policy(pooled, spec, steps=max(matched, 1), seed=seed + 1 + run).expected.mean()
        for run in range(on_policy_runs)
    ]
    return ReplayResult(estimate=estimate, on_policy_value=float(np.mean(values)), matched=matched)
