"""The evaluation protocol of `velox train`: choose on validation, then judge on test, then fit.

Three splits of the events, each into train / validation / test parts (batch.splits):

* `global_time` (the headline): the whole log cut at two moments, the latest 20 % of events
  test and the 20 % before them validation. Leak-free: nothing is fitted on events later
  than the ones it is judged on.
* `holdout`: per user, the latest `holdout_fraction` of their events test and the same share
  before them validation (users with at least `min_user_events`): the protocol of the
  earlier metrics of the same names.
* `random_split`: a seeded 20 % of events test, 20 % validation.

Order, and why it cannot leak: 1. item features are fitted on the headline split's training
part, from a frame from which the test rows are removed (`for_choosing`), and the head (prior,
lambda, exposure prior, exposure term: batch.head_choice) is chosen on its validation rows.
2. Only then are the test frames built (`for_testing`: train + validation rows train, test rows
held out); each split's features are refitted on them and the chosen head is judged on its
test rows, beside the most-popular baseline, with bootstrap intervals over users. 3. The
published model is fitted on every event with the chosen head. Hyper-parameters of the features
themselves (rank, regularization, iterations, alpha) are options, not chosen here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from pyspark.sql import DataFrame

from batch.evaluate_current import VERSUS, CurrentModel
from batch.head_choice import (
    EXPOSURE_GRID,
    TERM_GRID,
    HeadChoice,
    choose_head,
    fit_chosen,
    judge_head,
)
from batch.options import TrainOptions
from batch.prepare import PreparedEvents
from batch.splits import (
    for_choosing,
    for_testing,
    global_time_parts,
    no_holdout,
    random_parts,
    user_time_parts,
)
from batch.stages import StageTimer, concurrently
from batch.train_als import FeatureModel, TrainedModel

FeatureFitter = Callable[[DataFrame, tuple[int, int], TrainOptions], FeatureModel]

HEADLINE = "global_time"
VALIDATION_FRACTION = 0.2
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class ProtocolResult:
    """Test metrics (flat, for the manifest and the gate), their intervals, the chosen head,
    every validation candidate, and the model fitted on all events with that head."""

    metrics: dict[str, float]
    intervals: dict[str, dict[str, list[float]]]
    choice: HeadChoice
    candidates: list[dict[str, Any]]
    model: TrainedModel
    versus_current: dict[str, float] | None = None
    """Both models on the headline test rows the current version never saw (or None)."""


def split_parts(frame: DataFrame, options: TrainOptions) -> dict[str, DataFrame]:
    """The three three-way splits of `frame`, by protocol name (headline first)."""
    holdout = options.holdout_fraction
    return {
        HEADLINE: global_time_parts(frame, VALIDATION_FRACTION, TEST_FRACTION),
        "holdout": user_time_parts(frame, holdout, holdout, options.min_user_events),
        "random_split": random_parts(frame, VALIDATION_FRACTION, TEST_FRACTION, options.seed),
    }


def protocol_description(options: TrainOptions) -> dict[str, Any]:
    """What the manifest records of the protocol (snapshots compare only under the same one)."""
    return {
        "headline": HEADLINE,
        "splits": {
            HEADLINE: {"validation": VALIDATION_FRACTION, "test": TEST_FRACTION},
            "holdout": {
                "validation": options.holdout_fraction, "test": options.holdout_fraction,
                "min_user_events": options.min_user_events,
            },
            "random_split": {
                "validation": VALIDATION_FRACTION, "test": TEST_FRACTION, "seed": options.seed,
            },
        },
        "chosen_on": f"{HEADLINE} validation",
        "rmse_budget": options.rmse_budget,
        "exposure_grid": [list(pair) for pair in EXPOSURE_GRID],
        "exposure_term_grid": [list(pair) for pair in TERM_GRID],
        "top_k": options.top_k,
        "max_eval_users": options.max_eval_users,
        "intervals": "95 % bootstrap over users",
    }  # fmt: skip


CARRIED_PRECISION_MAX_BYTES = 1 << 30
"""The most `users.arrow` may spend on the users' Gram matrices (the carried online priors):
d(d+1)/2 float32 a user is 2.4 KB at d = 34, so about 450,000 users; a larger model publishes
none and its known users start online from precision λI (docs/snapshot_format.md)."""


def carries_precision(n_users: int, dim: int) -> bool:
    """Whether the published snapshot carries each user's Gram matrix (its batch precision)."""
    return n_users * (dim * (dim + 1) // 2) * 4 <= CARRIED_PRECISION_MAX_BYTES


def run_protocol(
    prepared: PreparedEvents,
    options: TrainOptions,
    timer: StageTimer,
    fit: FeatureFitter,
    current: CurrentModel | None = None,
) -> ProtocolResult:
    """Choose on validation, judge on test, fit on all events (module doc); `fit` fits the
    item features of a frame (ALS, or the deep model's towers). With `current` (the current
    snapshot), it is also scored on the headline test rows (batch.evaluate_current)."""
    shape = (prepared.n_users, prepared.n_items)
    parts = {name: frame.cache() for name, frame in split_parts(prepared.frame, options).items()}
    everything = no_holdout(prepared.frame)
    choosing = for_choosing(parts[HEADLINE])
    with timer.stage(f"{options.kind} features on the {HEADLINE} training part and all events"):
        fitted = concurrently({
            "choose": partial(fit, choosing, shape, options),
            "all": partial(fit, everything, shape, options),
        })  # fmt: skip
    with timer.stage(f"choose the head on the {HEADLINE} validation part"):
        choice, candidates = choose_head(choosing, fitted["choose"], shape, options)
    # The test rows enter only from here, after every choice is fixed.
    testing = {name: for_testing(frame) for name, frame in parts.items()}
    with timer.stage(f"{options.kind} features on {', '.join(testing)} (train + validation)"):
        features = concurrently(
            {name: partial(fit, frame, shape, options) for name, frame in testing.items()}
        )
    with timer.stage("judge on the test parts, and fit the published heads"):
        tasks: dict[str, Callable[[], Any]] = {
            name: partial(
                judge_head,
                frame,
                features[name],
                shape,
                options,
                choice,
                current if name == HEADLINE else None,
            )
            for name, frame in testing.items()
        }
        final = choice.features(fitted["all"])
        grams = carries_precision(shape[0], final.item_features.shape[1])
        tasks["model"] = partial(fit_chosen, everything, shape[0], final, choice, with_grams=grams)
        done = concurrently(tasks)
    for frame in parts.values():
        frame.unpersist()
    metrics: dict[str, float] = {}
    intervals: dict[str, dict[str, list[float]]] = {}
    for name in testing:
        for metric, found in done[name].items():
            # A split with no rankable (or no rated) test users has no value for a metric: it
            # is left out rather than published as NaN, which a manifest refuses.
            if metric in ("users", VERSUS) or not math.isfinite(found["value"]):
                continue
            metrics[f"{name}_{metric}"] = found["value"]
            if "low" in found and math.isfinite(found["low"]) and math.isfinite(found["high"]):
                intervals.setdefault(name, {})[metric] = [found["low"], found["high"]]
    versus = done[HEADLINE].get(VERSUS)
    return ProtocolResult(metrics, intervals, choice, candidates, done["model"], versus)
