"""Online adaptation on movielens-100k: later ratings through the online update vs a retrain.

    python -m bench.experiment_online_adaptation [--seed 42] [--discounts 0.1,0.25] [--inner]

Velox's headline experiment (Crankshaw et al. 2015, about 70 % there). The log is cut at two
moments (batch.splits.global_time_parts): the oldest 60 % of events (P0), the next 20 % (P1,
"later ratings"), the latest 20 % (P2, test). The head (exposure prior, prior, lambda, exposure
term) is chosen as `velox train` chooses it, on P1 with features fitted on P0. Arms, each
judged on P2 with the same users, items, exclusions (everything in P0 and P1) and metrics as the
protocol:

* before: the model trained on P0 (features and heads), nothing more;
* online: the same snapshot; each user's P1 ratings, in time order, applied one by one with
  `UserPosterior.update` from the prior the service gives them (online.served_model): mean the
  published w, precision the batch head's own, lambda I + sum x x^T over the user's P0 events
  (rebuilt here from P0 and checked to reproduce the batch mean), i.e. the exact math of
  `POST /observe` (in float64 here; the snapshot stores w and the Gram matrices in float32);
* online, prior precision lambda I: the same with the prior the service gave before the
  snapshot carried the batch precision (mean w, precision lambda I);
* online, term kept as an offset (diagnostic, not what the service does): the published w plus
  the change of the ridge part alone, w + (ridge on P0 + P1 - ridge on P0), features fixed;
* P0 features, heads refitted on P0 + P1 (diagnostic): what a retrain of the heads alone gives,
  the most any update of the user weights over P0's features could aim at;
* retrain: features and heads refitted on P0 + P1;
* with `--discounts`, for each weight g (not what the service does): the online arm from a
  prior whose P0 evidence counts g times, precision λI + g G_u and mean the ridge over the
  g-weighted P0 events plus the same exposure term, i.e. batch evidence discounted for drift.

`--inner` runs it all inside P0 + P1, with no P2 row read: fit on the oldest 45 % of the
events, stream the next 15 %, judge on P1, which is where a weight g could be chosen.

Gain recovered = (arm - before) / (retrain - before), for NDCG@10, recall@10 and RMSE (for
RMSE, gains are reductions). The first table is the protocol's (every P2 row); the second leaves
out the P2 rows and candidates of items first rated in P1 (P0's snapshot has no features for
them: only a retrain learns them), to show where the retrain's gain comes from. The ALS seed
(`--seed`) fixes every fit.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from pyspark.sql import DataFrame

from batch.datasets.reader import read_events, resolve_dataset
from batch.head_choice import (
    EvaluationRows,
    HeadChoice,
    choose_head,
    evaluation_rows,
    fit_chosen,
    score_head,
)
from batch.options import TrainOptions
from batch.prepare import ITEM, REWARD, USER, prepare_events
from batch.spark import get_spark
from batch.splits import (
    HELD_OUT,
    PART,
    TRAIN,
    VALIDATION,
    for_choosing,
    for_testing,
    global_time_parts,
)
from batch.train_als import POPULATION, FeatureModel, TrainedModel, fit_features
from velox.posterior import UserPosterior
from velox.settings import VeloxSettings

FloatArray = NDArray[np.float64]


def stream(
    features: FeatureModel,
    batch: FloatArray,
    priors: Callable[[int], UserPosterior],
    events: dict[str, np.ndarray],
) -> FloatArray:
    """Each user's posterior mean after their events (time order) from the prior `priors(u)`."""
    weights = batch.copy()
    order = np.lexsort((events["event_id"], events["t"], events[USER]))
    users, items, rewards = (events[k][order] for k in (USER, ITEM, REWARD))
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    for a, b in zip(starts, np.r_[starts[1:], users.size], strict=True):
        posterior = priors(int(users[a]))
        for item, reward in zip(items[a:b], rewards[a:b], strict=True):
            posterior.update(features.item_features[item], float(reward))
        weights[users[a]] = posterior.mean()
    return weights


def user_grams(
    features: FeatureModel, events: dict[str, np.ndarray], n_users: int
) -> tuple[FloatArray, FloatArray]:
    """Per user, Σ x xᵀ and Σ r x over `events` (the sufficient statistics of the ridge head)."""
    x = features.item_features[events[ITEM]]
    grams = np.zeros((n_users, x.shape[1], x.shape[1]))
    moments = np.zeros((n_users, x.shape[1]))
    np.add.at(grams, events[USER], x[:, :, None] * x[:, None, :])
    np.add.at(moments, events[USER], x * events[REWARD][:, None])
    return grams, moments


def ridge(grams: FloatArray, moments: FloatArray, prior: FloatArray, lam: float) -> FloatArray:
    """(λI + G_u)⁻¹(λ p_u + m_u) for every user: the batch head, solved on the driver."""
    eye = np.eye(grams.shape[1])
    rhs = moments + lam * np.broadcast_to(prior, moments.shape)
    return np.asarray(np.linalg.solve(grams + lam * eye, rhs[..., None])[..., 0])


def discounted_stream(
    features: FeatureModel,
    choice: HeadChoice,
    before: TrainedModel,
    stats: tuple[FloatArray, FloatArray, FloatArray, float],
    gamma: float,
    events: dict[str, np.ndarray],
) -> FloatArray:
    """The online arm from the batch head refitted with P0's evidence weighted `gamma` (g).

    `stats`: the users' P0 Gram matrices and moments, the head's prior mean and lambda.
    """
    grams, moments, prior, lam = stats
    means = choice.user_weights(features, before, ridge(gamma * grams, gamma * moments, prior, lam))
    precisions = gamma * grams + lam * np.eye(grams.shape[1])
    return stream(
        features, before.user_weights[0],
        lambda u: UserPosterior.from_precision(means[u], precisions[u], lam), events,
    )  # fmt: skip


def driver_events(frame: DataFrame) -> dict[str, np.ndarray]:
    """The (u, i, r, t, event_id) columns of `frame` as numpy arrays on the driver."""
    table = frame.selectExpr(
        USER, ITEM, REWARD, "unix_micros(timestamp) AS t", "event_id"
    ).toArrow()
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


def scored(
    features: FeatureModel, weights: FloatArray, rows: EvaluationRows, options: TrainOptions
) -> dict[str, float]:
    """NDCG@10, recall@10 and RMSE of `weights` (every user's row) on `rows`."""
    ranking, sse, counts = score_head(features, weights[rows.users], rows, options)
    return {
        "NDCG@10": float(ranking.ndcg.mean()),
        "recall@10": float(ranking.recall.mean()),
        "RMSE": float(np.sqrt(sse.sum() / counts.sum())),
    }


def report(label: str, found: dict[str, dict[str, float]]) -> None:
    """Print one table of arms and each middle arm's share of the retrain's gain."""
    print(f"\n{label}")
    print(f"{'arm':42} {'NDCG@10':>9} {'recall@10':>10} {'RMSE':>8}")
    for name, metrics in found.items():
        ndcg, recall, rmse = metrics["NDCG@10"], metrics["recall@10"], metrics["RMSE"]
        print(f"{name:42} {ndcg:9.4f} {recall:10.4f} {rmse:8.4f}")
    first, *middle, last = found.values()
    for name, metrics in zip(list(found)[1:-1], middle, strict=True):
        shares = ", ".join(
            f"{metric} {(metrics[metric] - first[metric]) / (last[metric] - first[metric]):.1%}"
            for metric in ("NDCG@10", "recall@10", "RMSE")
        )
        print(f"gain recovered, {name}: {shares}")


def time_parts(frame: DataFrame, inner: bool) -> DataFrame:
    """P0 / P1 / P2 at 60 / 20 / 20 % of the events, or with `inner` 45 / 15 / 20 % inside the
    first 80 % (P0 cut at its last quarter, P1 judged: no P2 row read)."""
    parts = global_time_parts(frame, 0.2, 0.2)
    if inner:
        parts = global_time_parts(parts.filter(parts[PART] != HELD_OUT).drop(PART), 0.1875, 0.25)
    return parts.cache()


def arguments() -> argparse.Namespace:
    """The command line (module doc)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=TrainOptions.seed)
    parser.add_argument("--discounts", default="", help="weights g of P0 evidence, e.g. 0.1,0.25")
    parser.add_argument("--inner", action="store_true", help="inside P0 + P1 only (module doc)")
    return parser.parse_args()


def main() -> None:
    """Fit the three arms, score them on P2, print the table and the share of the gain."""
    args = arguments()
    options = TrainOptions(dataset="movielens-100k", seed=args.seed)
    started = time.perf_counter()
    _, files = resolve_dataset(options, VeloxSettings())
    spark = get_spark(app_name="velox-online-adaptation", short_job=True)
    prepared = prepare_events(read_events(spark, files.events))
    shape = (prepared.n_users, prepared.n_items)
    parts = time_parts(prepared.frame, args.inner)
    choosing, testing = for_choosing(parts), for_testing(parts)
    early = fit_features(choosing, shape, options)
    choice, _ = choose_head(choosing, early, shape, options)
    before_features = choice.features(early)
    before = fit_chosen(choosing, shape[0], before_features, choice)
    lam, batch_w = before.lams[0], before.user_weights[0]
    p0_events = driver_events(parts.filter(parts[PART] == TRAIN))
    events = driver_events(parts.filter(parts[PART] == VALIDATION))
    # The batch head's own statistics over P0, checked against the head the batch solved.
    grams, moments = user_grams(before_features, p0_events, shape[0])
    prior = (
        before_features.prior_mean if choice.prior == POPULATION else before_features.own_weights
    )
    ridge_p0 = ridge(grams, moments, prior, lam)
    check = np.abs(choice.user_weights(before_features, before, ridge_p0) - batch_w).max()
    precisions = grams + lam * np.eye(grams.shape[1])
    isotropic = stream(
        before_features, batch_w, lambda u: UserPosterior.prior(batch_w[u], lam), events
    )
    carried = stream(
        before_features, batch_w,
        lambda u: UserPosterior.from_precision(batch_w[u], precisions[u], lam), events,
    )  # fmt: skip
    discounted = {
        gamma: discounted_stream(
            before_features, choice, before, (grams, moments, prior, lam), gamma, events
        )
        for gamma in (float(g) for g in args.discounts.split(",") if g)
    }
    later_grams, later_moments = user_grams(before_features, events, shape[0])
    later_b = (precisions @ batch_w[..., None])[..., 0] + later_moments
    closed = np.linalg.solve(precisions + later_grams, later_b[..., None])[..., 0]
    stream_check = np.abs(carried - closed).max()
    ridge_p01 = ridge(grams + later_grams, moments + later_moments, prior, lam)
    offset = batch_w + ridge_p01 - ridge_p0
    refitted = fit_chosen(testing, shape[0], before_features, choice).user_weights[0]
    retrain_features = choice.features(fit_features(testing, shape, options))
    retrain = fit_chosen(testing, shape[0], retrain_features, choice)
    rows = evaluation_rows(testing, shape[0], shape[1], options)
    arms = {
        "before (trained on P0)": (before_features, batch_w),
        "online, prior precision lambda I (old)": (before_features, isotropic),
        "online (P1 through the /observe update)": (before_features, carried),
        "online, term kept as an offset": (before_features, offset),
        **{f"online, P0 evidence x{g}": (before_features, w) for g, w in discounted.items()},
        "P0 features, heads refitted on P0 + P1": (before_features, refitted),
        "retrain (P0 + P1)": (retrain_features, retrain.user_weights[0]),
    }
    p0_counts = np.bincount(p0_events[ITEM], minlength=shape[1])
    new_items = (p0_counts == 0) & rows.candidates  # first rated in P1
    held_new = new_items[rows.table.column(ITEM).to_numpy()]
    old_rows = replace(
        rows, table=rows.table.filter(pa.array(~held_new)), candidates=rows.candidates & ~new_items
    )
    tables = {"all P2 rows (the protocol)": rows, "P2 rows of items rated in P0 only": old_rows}
    found = {
        label: {name: scored(*arm, judged, options) for name, arm in arms.items()}
        for label, judged in tables.items()
    }
    spark.stop()
    cut = "45/15/20 inside P0 + P1 (--inner)" if args.inner else "60/20/20"
    print(
        f"\nmovielens-100k, global time cut {cut}, seed {args.seed}, head {choice.as_dict()}, "
        f"{events[USER].size} later ratings streamed, {int(rows.users.sum())} users, "
        f"{int(new_items.sum())} items first rated in P1 ({time.perf_counter() - started:.0f} s)"
    )
    print(f"batch mean rebuilt from its precision: max |diff| {check:.2e}")
    print(f"carried prior streamed vs closed form: max |diff| {stream_check:.2e}")
    for label, metrics in found.items():
        report(label, metrics)


if __name__ == "__main__":
    main()
