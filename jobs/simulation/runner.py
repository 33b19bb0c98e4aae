"""Run one exploration policy through a hidden world with the service's own code path.

Every step a held-out user visits (and, when the setting has `candidates` = M, a retrieval
stage offers M random items of the catalog); the policy (`velox.policies.make_policy`)
chooses a slate from the learner's ItemMatrix given the user's `UserPosterior` (a bare
"thompson" at the head prior's calibrated scale, as the service's default would be); the hidden
model decides each slot's reward (like = 1, else 0); every slot's reward is applied to the
posterior by `UserPosterior.update`, exactly as /observe does. Visitors, candidate sets and
reward draws come from generators seeded by the run's seed alone, so every policy meets the
same visitors, candidates and uniform draws (common random numbers: differences between
policies are not luck of the draw). Regret is expected regret: the like-probabilities of the
best slate still available minus those of the slate shown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from jobs.simulation.environment import Environment
from velox.errors import InvalidInputError
from velox.policies import make_policy
from velox.posterior import UserPosterior

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PolicyRun:
    """Per-step outcomes of one policy in one world: who visited, what was shown (-1: slot left
    empty), realised reward, expected reward, expected regret."""

    policy: str
    seed: int
    users: NDArray[np.int64]
    shown: NDArray[np.int64]
    rewards: FloatArray
    expected: FloatArray
    regret: FloatArray

    @property
    def steps(self) -> int:
        """Number of visits simulated."""
        return int(self.rewards.shape[0])

    def summary(self) -> dict[str, float | int | str]:
        """Totals for the JSON report."""
        return {
            "policy": self.policy,
            "seed": self.seed,
            "steps": self.steps,
            "cumulative_reward": float(self.rewards.sum()),
            "expected_reward": float(self.expected.sum()),
            "regret": float(self.regret.sum()),
            "mean_reward": float(self.rewards.mean()),
        }


def _best_available(probability: FloatArray, eligible: NDArray[np.bool_] | None, k: int) -> float:
    """Sum of the k highest like-probabilities among the eligible items."""
    pool = probability if eligible is None else probability[eligible]
    k = min(k, pool.shape[0])
    if k == 0:
        return 0.0
    return float(np.partition(pool, pool.shape[0] - k)[pool.shape[0] - k :].sum())


def candidate_mask(
    rng: np.random.Generator, n_items: int, candidates: int | None
) -> NDArray[np.bool_] | None:
    """A mask of `candidates` random items (a retrieval stage), or None for the full catalog."""
    if candidates is None:
        return None
    mask = np.zeros(n_items, dtype=np.bool_)
    mask[rng.choice(n_items, candidates, replace=False)] = True
    return mask


def run_policy(env: Environment, spec: str, *, steps: int, seed: int) -> PolicyRun:
    """Simulate `steps` visits of the cohort under the policy `spec` (seeded by `seed`)."""
    if steps < 1:
        raise InvalidInputError(f"steps must be >= 1, got {steps}")
    k = env.setting.slate_size
    world = np.random.default_rng([seed, 1])
    visitors = world.integers(0, env.cohort, steps)
    draws = world.random((steps, k))
    retrieval = np.random.default_rng([seed, 2])
    policy = make_policy(spec, seed=seed, thompson_scale=env.head.thompson_scale)
    features = env.items.features.astype(np.float64)
    best_overall = np.sort(env.like_probability, axis=1)[:, -k:].sum(axis=1)
    posteriors: dict[int, UserPosterior] = {}
    shown: dict[int, NDArray[np.bool_]] = {}
    slates = np.full((steps, k), -1, dtype=np.int64)
    rewards = np.zeros(steps)
    expected = np.zeros(steps)
    regret = np.zeros(steps)
    for step, user in enumerate(visitors.tolist()):
        posterior = posteriors.get(user)
        if posterior is None:
            posterior = posteriors[user] = env.new_posterior()
        seen = None if env.setting.repeat else shown.setdefault(user, np.zeros(env.items.n, bool))
        allowed = candidate_mask(retrieval, env.items.n, env.setting.candidates)
        eligible = allowed if seen is None else (~seen if allowed is None else allowed & ~seen)
        probability = env.like_probability[user]
        best = best_overall[user] if eligible is None else _best_available(probability, eligible, k)
        chosen = policy.select(env.items, posterior, k, allowed=eligible).items
        liked = draws[step, : chosen.size] < probability[chosen]
        for item, reward in zip(chosen.tolist(), liked.tolist(), strict=True):
            posterior.update(features[item], float(reward))
        if seen is not None:
            seen[chosen] = True
        slates[step, : chosen.size] = chosen
        rewards[step] = liked.sum()
        expected[step] = probability[chosen].sum()
        regret[step] = best - expected[step]
    return PolicyRun(
        policy=spec, seed=seed, users=visitors.astype(np.int64), shown=slates, rewards=rewards,
        expected=expected, regret=regret,
    )  # fmt: skip
