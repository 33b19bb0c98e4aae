"""Online adaptation on movielens-100k: later ratings through the online update vs a retrain.

    python -m bench.experiment_online_adaptation [--seed 42]

Velox's headline experiment (Crankshaw et al. 2015, about 70 % there). The log is cut at two
moments (batch.splits.global_time_parts): the oldest 60 % of events (P0), the next 20 % (P1,
"later ratings"), the latest 20 % (P2, test). The head (exposure prior, prior, lambda, exposure
term) is chosen as `velox train` chooses it, on P1 with features fitted on P0. Three arms, each
judged on P2 with the same users, items, exclusions (everything in P0 and P1) and metrics as the
protocol:

* before: the model trained on P0 (features and heads), nothing more;
* online: the same snapshot; each user's P1 ratings, in time order, applied one by one with
  `UserPosterior.update` from the prior the service gives them (their batch weights as prior
  mean, precision lambda: online.served_model), i.e. the exact math of `POST /observe`;
* retrain: features and heads refitted on P0 + P1.

Gain recovered = (online - before) / (retrain - before), for NDCG@10, recall@10 and RMSE (for
RMSE, gains are reductions). The ALS seed (`--seed`) fixes every fit.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numpy.typing import NDArray

from batch.datasets.reader import read_events, resolve_dataset
from batch.head_choice import choose_head, evaluation_rows, fit_chosen, score_head
from batch.options import TrainOptions
from batch.prepare import ITEM, REWARD, USER, prepare_events
from batch.spark import get_spark
from batch.splits import PART, VALIDATION, for_choosing, for_testing, global_time_parts
from batch.train_als import FeatureModel, fit_features
from velox.posterior import UserPosterior
from velox.settings import VeloxSettings

FloatArray = NDArray[np.float64]


def stream(
    features: FeatureModel, batch: FloatArray, lam: float, events: dict[str, np.ndarray]
) -> FloatArray:
    """Each user's posterior mean after their events (time order) from prior (batch w, lam)."""
    weights = batch.copy()
    order = np.lexsort((events["event_id"], events["t"], events[USER]))
    users, items, rewards = (events[k][order] for k in (USER, ITEM, REWARD))
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    for a, b in zip(starts, np.r_[starts[1:], users.size], strict=True):
        posterior = UserPosterior.prior(batch[users[a]], lam)
        for item, reward in zip(items[a:b], rewards[a:b], strict=True):
            posterior.update(features.item_features[item], float(reward))
        weights[users[a]] = posterior.mean()
    return weights


def main() -> None:
    """Fit the three arms, score them on P2, print the table and the share of the gain."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=TrainOptions.seed)
    args = parser.parse_args()
    options = TrainOptions(dataset="movielens-100k", seed=args.seed)
    started = time.perf_counter()
    _, files = resolve_dataset(options, VeloxSettings())
    spark = get_spark(app_name="velox-online-adaptation", short_job=True)
    prepared = prepare_events(read_events(spark, files.events))
    shape = (prepared.n_users, prepared.n_items)
    parts = global_time_parts(prepared.frame, 0.2, 0.2).cache()
    choosing, testing = for_choosing(parts), for_testing(parts)
    early = fit_features(choosing, shape, options)
    choice, _ = choose_head(choosing, early, shape, options)
    before_features = choice.features(early)
    before = fit_chosen(choosing, shape[0], before_features, choice)
    later = parts.filter(parts[PART] == VALIDATION).selectExpr(
        USER, ITEM, REWARD, "unix_micros(timestamp) AS t", "event_id"
    )
    table = later.toArrow()
    events = {
        name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names
    }
    online = stream(before_features, before.user_weights[0], before.lams[0], events)
    retrain_features = choice.features(fit_features(testing, shape, options))
    retrain = fit_chosen(testing, shape[0], retrain_features, choice)
    rows = evaluation_rows(testing, shape[0], shape[1], options)
    arms = {
        "before (trained on P0)": (before_features, before.user_weights[0]),
        "online (P1 through the /observe update)": (before_features, online),
        "retrain (P0 + P1)": (retrain_features, retrain.user_weights[0]),
    }
    found: dict[str, dict[str, float]] = {}
    for name, (features, weights) in arms.items():
        ranking, sse, counts = score_head(features, weights[rows.users], rows, options)
        found[name] = {
            "NDCG@10": float(ranking.ndcg.mean()),
            "recall@10": float(ranking.recall.mean()),
            "RMSE": float(np.sqrt(sse.sum() / counts.sum())),
        }
    spark.stop()
    print(
        f"\nmovielens-100k, global time cut 60/20/20, seed {args.seed}, head {choice.as_dict()}, "
        f"{len(table)} later ratings streamed, {int(rows.users.sum())} users "
        f"({time.perf_counter() - started:.0f} s)"
    )
    print(f"{'arm':42} {'NDCG@10':>9} {'recall@10':>10} {'RMSE':>8}")
    for name, metrics in found.items():
        ndcg, recall, rmse = metrics["NDCG@10"], metrics["recall@10"], metrics["RMSE"]
        print(f"{name:42} {ndcg:9.4f} {recall:10.4f} {rmse:8.4f}")
    a, b, c = found.values()
    for metric in ("NDCG@10", "recall@10", "RMSE"):
        share = (b[metric] - a[metric]) / (c[metric] - a[metric])
        print(f"gain recovered online, {metric}: {share:.1%} (target >= 90 %)")


if __name__ == "__main__":
    main()
