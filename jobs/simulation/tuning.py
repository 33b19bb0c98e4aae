"""Policies compared over several seeded worlds, and hyper-parameters tuned on worlds of their own.

Tuning is honest when the seeds that choose ε (or LinUCB's alpha, or Thompson sampling's posterior
scale) are not the seeds that report the comparison: `tune` runs a grid on tuning seeds, and the
caller evaluates the chosen value next to the other policies on separate evaluation seeds with
`compare_policies`. Every family gets a grid of the same resolution around its optimum, ε
included: on the ml-100k simulator its best value sits at the small end, so the grid reaches
down to 0.001 (ε = 0 is greedy, which is always reported beside it), and the scale's grid
reaches down to 0.05 because with the rank-16 learner the best scale sat on 0.1, the old edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from jobs.simulation.environment import SimulationSetting, build_environment
from jobs.simulation.ratings import Ratings
from jobs.simulation.runner import PolicyRun, run_policy

EPSILON_GRID = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
ALPHA_GRID = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
SCALE_GRID = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)


@dataclass(frozen=True)
class PolicyOutcome:
    """One policy's runs over the seeds, and their means."""

    spec: str
    runs: tuple[PolicyRun, ...]

    @property
    def cumulative_reward(self) -> float:
        """Mean over seeds of the cumulative reward."""
        return float(np.mean([run.rewards.sum() for run in self.runs]))

    @property
    def regret(self) -> float:
        """Mean over seeds of the cumulative expected regret."""
        return float(np.mean([run.regret.sum() for run in self.runs]))

    def mean_curve(self) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
        """Per-step reward averaged over seeds (for plots)."""
        curve: np.ndarray[tuple[int], np.dtype[np.float64]] = np.mean(
            [run.rewards for run in self.runs], axis=0
        )
        return curve


def compare_policies(
    ratings: Ratings,
    setting: SimulationSetting,
    specs: Sequence[str],
    *,
    seeds: Sequence[int],
    steps: int,
) -> dict[str, PolicyOutcome]:
    """Run every policy in the world of every seed (one world per seed, shared by policies)."""
    runs: dict[str, list[PolicyRun]] = {spec: [] for spec in specs}
    for seed in seeds:
        env = build_environment(ratings, setting, seed)
        for spec in specs:
            runs[spec].append(run_policy(env, spec, steps=steps, seed=seed))
    return {spec: PolicyOutcome(spec, tuple(found)) for spec, found in runs.items()}


def tune(
    ratings: Ratings,
    setting: SimulationSetting,
    family: str,
    grid: Sequence[float],
    *,
    seeds: Sequence[int],
    steps: int,
) -> tuple[float, dict[float, float]]:
    """The value of `grid` for spec `family:value` (egreedy, linucb, thompson) with the highest
    mean cumulative reward on `seeds`, and the mean of every value."""
    specs = [f"{family}:{value}" for value in grid]
    outcomes = compare_policies(ratings, setting, specs, seeds=seeds, steps=steps)
    means = {value: outcomes[f"{family}:{value}"].cumulative_reward for value in grid}
    return max(means, key=means.__getitem__), means
