"""What a new user's prior recommends under each learner, against what the hidden world favours.

Run: python -m bench.diagnose_prior_top_items [--seeds 3]

For each learner (`SimulationSetting.learner`) and seed: the number of ratings of the 10 items
the population prior ranks first (greedy's first choices for every cold-start user), the cohort's
mean like-probability of those items and of the first one, and the median number of ratings of
each cohort user's best item in the hidden world (BENCHMARKS.md, "Exploration").
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from bench.bench_bandits import table
from jobs.simulation.environment import LEARNERS, SimulationSetting, build_environment
from jobs.simulation.ratings import load_ratings
from velox.settings import VeloxSettings


def main() -> None:
    """Print one row per learner and seed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    ratings = load_ratings("movielens-100k", VeloxSettings())
    counts = np.bincount(ratings.items, minlength=ratings.n_items)
    rows = []
    for learner in LEARNERS:
        for seed in range(args.seeds):
            env = build_environment(ratings, replace(SimulationSetting(), learner=learner), seed)
            prior_scores = env.items.features.astype(np.float64) @ env.head.w0
            top = np.argsort(-prior_scores)[:10]
            like = env.like_probability
            rows.append([
                learner, seed, " ".join(str(c) for c in counts[top]),
                f"{like[:, top].mean():.3f}", f"{like[:, top[0]].mean():.3f}",
                f"{np.median(counts[like.argmax(axis=1)]):.0f}",
            ])  # fmt: skip
    table(
        "the population prior's top 10 items for a new user",
        ["learner", "seed", "ratings of each", "mean like", "first's like", "best item: median"],
        rows,
    )


if __name__ == "__main__":
    main()
