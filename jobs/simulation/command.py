"""`velox simulate`: run policies through the hidden world and print a JSON report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jobs.simulation.environment import SimulationSetting, build_environment
from jobs.simulation.plot import plot_cumulative_reward
from jobs.simulation.ratings import load_ratings
from jobs.simulation.runner import run_policy
from velox.errors import InvalidInputError
from velox.settings import VeloxSettings

DEFAULT_POLICIES = ("greedy", "egreedy:0.05", "thompson", "linucb")


def simulate(
    settings: VeloxSettings,
    *,
    dataset: str,
    policies: Sequence[str],
    steps: int,
    seed: int,
    setting: SimulationSetting,
    plot: Path | None = None,
) -> dict[str, Any]:
    """Build the world for `seed`, run every policy in it, and return the report."""
    if len(set(policies)) != len(policies):
        raise InvalidInputError("each --policy may be given once")
    env = build_environment(load_ratings(dataset, settings), setting, seed)
    runs = [run_policy(env, spec, steps=steps, seed=seed) for spec in policies or DEFAULT_POLICIES]
    report: dict[str, Any] = {
        "dataset": dataset,
        "seed": seed,
        "steps": steps,
        "setting": setting.as_dict(),
        "learner": {
            "dim": env.items.dim,
            "lam": env.head.lam,
            "noise_std": env.head.noise_std,
            "thompson_scale": env.head.thompson_scale,
        },
        "policies": {run.policy: run.summary() for run in runs},
    }
    if plot is not None:
        title = f"{dataset}, {env.cohort} held-out users, seed {seed}"
        curves = {run.policy: run.rewards for run in runs}
        report["plot"] = str(plot_cumulative_reward(curves, plot, title=title))
    return report


def run_simulate(
    settings: VeloxSettings,
    *,
    dataset: str,
    policies: Sequence[str],
    steps: int,
    seed: int,
    setting: SimulationSetting,
    plot: Path | None = None,
) -> None:
    """`velox simulate`: print the report as JSON on stdout."""
    report = simulate(
        settings, dataset=dataset, policies=policies, steps=steps, seed=seed, setting=setting,
        plot=plot,
    )  # fmt: skip
    print(json.dumps(report, indent=2))
