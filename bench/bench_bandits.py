"""The exploration acceptance run and the off-policy-evaluation coverage run, on ml-100k.

Run: python -m bench.bench_bandits [--steps 20000] [--seeds 5] [--tuning-seeds 3] [--skip-tuning]
       [--cohort 100] [--learner-rank 16] [--candidates M] [--no-repeat]
       [--prior-labels ratings|world] [--learner velox-train|biased-als]
       [--ope-rows 20000] [--ope-repetitions 20] [--skip-ope]
       [--plot bench/out/bandits.png]

1. ε-greedy's ε, LinUCB's alpha and Thompson sampling's posterior scale are tuned alike on their
   own seeds (1000, 1001, 1002; `--tuning-seeds N` takes the first N, for quick scans): the grid
   value (`jobs.simulation.tuning`) with the highest mean cumulative reward there. Greedy,
   ε-greedy at its default 0.1 and tuned, the default Thompson sampling (bare `thompson`: the
   head prior's calibrated scale, `velox.policies.calibration`), plain Thompson sampling
   (`thompson:1.0`), the tuned Thompson sampling, the default LinUCB (alpha 1) and the tuned
   LinUCB then run on the evaluation seeds 0..seeds-1 (one world per seed, the same for every
   policy); the table gives mean cumulative reward, its ratio to greedy and to the tuned
   ε-greedy (baselines of the same run) and the mean cumulative expected regret. Two acceptance
   lines follow: the defaults, untuned, against 1.05 x greedy and 1.05 x `egreedy:0.1`; the
   tuned Thompson sampling and LinUCB against 1.10 x the tuned ε-greedy (`--skip-tuning` runs
   the defaults only). A headroom table follows: what the best item, a least-squares head's
   first item and the prior mean's first item would earn (whole-catalog worlds only).
   `--prior-labels world` fits the learner's head prior on labels drawn from the hidden world
   (`jobs.simulation.environment`); `--learner-rank` sets the rank of the learner's item
   features (default 16, as `velox train`), `--learner biased-als` swaps `velox train`'s
   feature recipe for the hidden world's own model class (the simulator's old learner), and
   `--candidates M` adds a retrieval stage of M random items per visit.
2. OPE: a frozen ε-greedy(0.1) target over personalised posteriors, logged by ε-greedy(0.5)
   over the population prior, `--ope-repetitions` logs of `--ope-rows` decisions; each
   estimator's worst relative error against the measured on-policy value and the share of
   its 95% bootstrap intervals that cover it. Replay of learning policies over uniform logs.
"""

from __future__ import annotations

import os

# Must be set before numpy loads OpenBLAS: the simulator's products are small.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from jobs.simulation.environment import LEARNERS, PRIOR_LABELS, SimulationSetting, build_environment
from jobs.simulation.ope_study import ESTIMATORS, OpeSetting, coverage_study, replay_study
from jobs.simulation.plot import plot_cumulative_reward
from jobs.simulation.ratings import Ratings, load_ratings
from jobs.simulation.tuning import ALPHA_GRID, EPSILON_GRID, SCALE_GRID, compare_policies, tune
from velox.policies import make_policy
from velox.settings import VeloxSettings

TUNING_SEEDS = (1000, 1001, 1002)
GRIDS = (("egreedy", EPSILON_GRID), ("thompson", SCALE_GRID), ("linucb", ALPHA_GRID))
ACCEPTANCE = 1.10
DEFAULTS_ACCEPTANCE = 1.05
DEFAULTS = ("thompson", "linucb")
BASELINES = ("greedy", "egreedy:0.1")


def table(title: str, header: list[str], rows: Sequence[Sequence[object]]) -> None:
    """Print one aligned table."""
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def bandits(ratings: Ratings, setting: SimulationSetting, args: argparse.Namespace) -> None:
    """Tune each family on the tuning seeds, then compare the policies on the evaluation seeds."""
    started = time.perf_counter()
    tuned = []
    tuning_seeds = TUNING_SEEDS[: args.tuning_seeds]
    for family, grid in () if args.skip_tuning else GRIDS:
        best, means = tune(ratings, setting, family, grid, seeds=tuning_seeds, steps=args.steps)
        table(
            f"{family} grid on tuning seeds {tuning_seeds} ({args.steps} steps, mean cum. reward)",
            ["value", "reward"],
            [[value, f"{means[value]:.1f}"] for value in grid],
        )
        tuned.append(make_policy(f"{family}:{best}").spec)
    # Canonical specs, so that a tuned value equal to a fixed one runs once; the bare defaults
    # stay bare (a bare "thompson" is the calibrated scale, not "thompson:1.0").
    wanted = [*BASELINES, *DEFAULTS, "thompson:1.0", *tuned]
    specs = list(dict.fromkeys(s if s in DEFAULTS else make_policy(s).spec for s in wanted))
    seeds = list(range(args.seeds))
    outcomes = compare_policies(ratings, setting, specs, seeds=seeds, steps=args.steps)
    greedy = outcomes["greedy"].cumulative_reward
    baseline = outcomes[tuned[0]].cumulative_reward if tuned else greedy
    rows = []
    for spec, outcome in outcomes.items():
        per_seed = [run.rewards.sum() for run in outcome.runs]
        rows.append([
            spec, f"{outcome.cumulative_reward:.1f}", f"{outcome.cumulative_reward / greedy:.3f}",
            f"{outcome.cumulative_reward / baseline:.3f}", f"{outcome.regret:.1f}",
            f"{min(per_seed):.0f}..{max(per_seed):.0f}",
        ])  # fmt: skip
    table(
        f"policies on seeds {seeds}, {args.steps} steps, cohort {setting.cohort}, "
        f"learner_rank={setting.learner_rank}, candidates={setting.candidates}, "
        f"repeat={setting.repeat}, prior_labels={setting.prior_labels}, "
        f"learner={setting.learner} (tuned: {', '.join(tuned) or 'skipped'}; "
        f"{time.perf_counter() - started:.0f} s)",
        ["policy", "cum. reward", "vs greedy", "vs tuned ε-greedy", "regret", "per-seed range"],
        rows,
    )
    verdicts = []
    for spec in DEFAULTS:
        ratios = [
            outcomes[spec].cumulative_reward / outcomes[b].cumulative_reward for b in BASELINES
        ]
        met = min(ratios) >= DEFAULTS_ACCEPTANCE
        shown = ", ".join(f"{r:.3f} x {b}" for r, b in zip(ratios, BASELINES, strict=True))
        verdicts.append(f"{spec} {shown} ({'meets' if met else 'misses'})")
    print(f"\nacceptance (defaults, >= {DEFAULTS_ACCEPTANCE:.2f} x each): {'; '.join(verdicts)}")
    if tuned:
        epsilon_greedy, thompson, linucb = tuned
        tuned_ratios = {s: outcomes[s].cumulative_reward / baseline for s in (thompson, linucb)}
        verdicts = [
            f"{s} {r:.3f} ({'meets' if r >= ACCEPTANCE else 'misses'})"
            for s, r in tuned_ratios.items()
        ]
        print(f"acceptance (tuned, >= {ACCEPTANCE:.2f} x {epsilon_greedy}): {'; '.join(verdicts)}")
    if args.plot:
        curves = {spec: outcome.mean_curve() for spec, outcome in outcomes.items()}
        title = f"ml-100k simulator, mean of {len(seeds)} seeds"
        print(f"\nplot: {plot_cumulative_reward(curves, Path(args.plot), title=title)}")


def headroom(ratings: Ratings, setting: SimulationSetting, args: argparse.Namespace) -> None:
    """What fixed choices would earn per user over the run (repeat=True, whole-catalog worlds
    only: a retrieval stage does not offer a fixed item on every visit).

    The best item; the item ranked first by the least-squares fit of the user's own hidden
    like-probabilities on the learner's features (where a head fitted on every item would
    settle: the cost of a linear head on these features); the item ranked first by the prior
    mean (greedy's first choice). Expected reward x steps, mean over the evaluation seeds.
    """
    if not setting.repeat or setting.candidates is not None:
        return
    rows = []
    for seed in range(args.seeds):
        env = build_environment(ratings, setting, seed)
        features = env.items.features.astype(np.float64)
        like = env.like_probability
        oracle = np.linalg.lstsq(features, like.T, rcond=None)[0]
        linear = np.argmax(features @ oracle, axis=0)
        prior = int(np.argmax(features @ env.head.w0))
        rows.append([
            like.max(axis=1).mean(), like[np.arange(env.cohort), linear].mean(),
            like[:, prior].mean(),
        ])  # fmt: skip
    best, linear_best, prior_best = (args.steps * value for value in np.mean(rows, axis=0))
    table(
        f"headroom on seeds 0..{args.seeds - 1} (expected reward of a fixed item per user)",
        ["best item", "least-squares head's first item", "prior mean's first item"],
        [[f"{best:.0f}", f"{linear_best:.0f}", f"{prior_best:.0f}"]],
    )


def ope(ratings: Ratings, setting: SimulationSetting, args: argparse.Namespace) -> None:
    """IPS/SNIPS/DR accuracy and CI coverage, then replay of learning policies."""
    started = time.perf_counter()
    env = build_environment(ratings, replace(setting, repeat=True), seed=0)
    ope_setting = OpeSetting()
    report = coverage_study(
        env, ope_setting, rows=args.ope_rows, repetitions=args.ope_repetitions, seed=0
    )
    table(
        f"OPE of {ope_setting.target} (frozen) from {ope_setting.logging} logs, "
        f"{ope_setting.candidates} candidates, {report.repetitions} logs x {report.rows} rows; "
        f"on-policy value {report.on_policy_value:.4f} "
        f"({time.perf_counter() - started:.0f} s)",
        ["estimator", "max rel. error", "mean rel. error", "CI coverage", "mean CI width", "ESS"],
        [
            [
                name, f"{report.max_relative_error[name]:.3f}",
                f"{report.mean_relative_error[name]:.3f}", f"{report.coverage[name]:.2f}",
                f"{report.mean_ci_width[name]:.4f}", f"{report.mean_ess[name]:.0f}",
            ]
            for name in ESTIMATORS
        ],
    )  # fmt: skip
    rows = []
    for spec in ("greedy", "thompson", "linucb"):
        result = replay_study(env, spec, rows=args.ope_rows, candidates=10, seed=0)
        est = result.estimate
        rows.append([
            spec, result.matched, f"{est.value:.4f}", f"[{est.ci_low:.4f}, {est.ci_high:.4f}]",
            f"{result.on_policy_value:.4f}", f"{est.value / result.on_policy_value:.3f}",
        ])  # fmt: skip
    table(
        f"replay over {args.ope_rows} uniformly logged decisions (10 candidates)",
        ["policy", "matched", "replay", "95% CI", "on-policy", "ratio"],
        rows,
    )


def main() -> None:
    """Parse options, load ml-100k once, run both parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--tuning-seeds",
        type=int,
        choices=range(1, len(TUNING_SEEDS) + 1),
        default=len(TUNING_SEEDS),
    )
    parser.add_argument("--cohort", type=int, default=SimulationSetting.cohort)
    parser.add_argument("--learner-rank", type=int, default=SimulationSetting.learner_rank)
    parser.add_argument("--candidates", type=int, default=SimulationSetting.candidates)
    parser.add_argument("--no-repeat", action="store_true")
    parser.add_argument(
        "--prior-labels", choices=PRIOR_LABELS, default=SimulationSetting.prior_labels
    )
    parser.add_argument("--learner", choices=LEARNERS, default=SimulationSetting.learner)
    parser.add_argument("--ope-rows", type=int, default=20_000)
    parser.add_argument("--ope-repetitions", type=int, default=20)
    parser.add_argument("--skip-ope", action="store_true")
    parser.add_argument("--skip-bandits", action="store_true")
    parser.add_argument("--skip-tuning", action="store_true")
    parser.add_argument("--plot", default="bench/out/bandits.png")
    args = parser.parse_args()
    ratings = load_ratings("movielens-100k", VeloxSettings())
    setting = SimulationSetting(
        cohort=args.cohort, learner_rank=args.learner_rank, candidates=args.candidates,
        repeat=not args.no_repeat, prior_labels=args.prior_labels, learner=args.learner,
    )  # fmt: skip
    if not args.skip_bandits:
        bandits(ratings, setting, args)
        headroom(ratings, setting, args)
    if not args.skip_ope:
        ope(ratings, setting, args)


if __name__ == "__main__":
    main()
