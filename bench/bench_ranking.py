"""Issue 25's table, re-run: ranking and RMSE of Velox beside the most-popular list and a tuned
implicit ALS, on movielens-100k, under `velox train`'s protocol (batch.protocol).

    python -m bench.bench_ranking [--skip-implicit-als] [--rmse-budgets 0.01,0.02,0.05]

One Spark session. The three splits (global time: the headline; per-user time holdout; random)
are computed once by batch.splits and shared by every row:

* most popular: items by training events, from the `velox train` run's manifest (the same run
  computes it, on the same users);
* implicit ALS (bench/implicit_als.py, numpy): its grid searched on each split's validation
  part, refitted on train + validation, scored on test;
* `velox train` (default) and `velox train --implicit` (whose relevance is any held-out
  event, velox train's definition for implicit rewards: not comparable with the other rows):
  train_and_publish into a temporary registry, metrics and 95 % bootstrap intervals read
  from the manifests; `--rmse-budgets` adds a `velox train` row per other value of
  `TrainOptions.rmse_budget` (the trade-off between RMSE and ranking that the head is chosen
  under, batch.head_choice).

Acceptance lines (issue 25): on the global time split and the per-user holdout, the default's
NDCG@10 and recall@10 above most popular with non-overlapping intervals and within 5 % of
implicit ALS; RMSE on the per-user holdout within 1 % of 0.950.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from typing import Any

import numpy as np

from batch.datasets.reader import read_attributes, read_events, resolve_dataset
from batch.errors import GateRejectedError
from batch.evaluate import bootstrap
from batch.options import TrainOptions
from batch.prepare import ITEM, REWARD, USER, prepare_events
from batch.protocol import HEADLINE, split_parts
from batch.spark import get_spark
from batch.splits import PART
from batch.train_command import train_and_publish
from bench import implicit_als
from feature_store.manifest import Manifest
from feature_store.registry import Registry
from velox.settings import VeloxSettings

PROTOCOLS = (HEADLINE, "holdout", "random_split")
RMSE_TODAY = 0.950
Cell = dict[str, Any]


def _velox(prepared: Any, attributes: Any, options: TrainOptions, root: str) -> Manifest:
    """One `velox train` run into a temporary registry; its manifest even if the gate refused."""
    registry = Registry(root)
    try:
        return train_and_publish(prepared, attributes, options, registry, dataset="ml-100k")
    except GateRejectedError as refused:
        print(f"  (gate: {refused.message})")
        return registry.manifest(options.model, registry.versions(options.model)[-1])


def _from_manifest(manifest: Manifest, protocol: str, prefix: str = "") -> Cell:
    metrics, spans = manifest.metrics, manifest.extra["intervals"].get(protocol, {})
    cell: Cell = {}
    for metric in ("rmse", "recall@10", "ndcg@10"):
        name = f"{protocol}_{prefix}{metric}"
        if name in metrics:
            cell[metric] = (metrics[name], *spans.get(prefix + metric, [float("nan")] * 2))
    return cell


def _implicit_als(prepared: Any, options: TrainOptions) -> dict[str, Cell]:
    shape = (prepared.n_users, prepared.n_items)
    found: dict[str, Cell] = {}
    for protocol, frame in split_parts(prepared.frame, options).items():
        rows = frame.select(USER, ITEM, REWARD, PART).toArrow()
        started = time.perf_counter()
        tuned = implicit_als.tune(rows, shape, options.top_k)
        cell: Cell = {}
        for metric, values in (("recall@10", tuned.test.recall), ("ndcg@10", tuned.test.ndcg)):
            cell[metric] = (float(values.mean()), *bootstrap(values, options.seed))
        cell["setting"] = tuned.setting
        found[protocol] = cell
        print(
            f"  implicit ALS on {protocol}: {tuned.setting} ({time.perf_counter() - started:.0f} s)"
        )
    return found


def _head(selection: dict[str, Any]) -> str:
    """The chosen head of a manifest's lambda_selection, in words."""
    term = selection.get("exposure_term", [0.0, 0.0])
    return (
        f"{selection['chosen']}, exposure prior {selection['exposure_prior']}, "
        f"exposure term beta {term[0]} n0 {term[1]}"
    )


def _show(value: tuple[float, float, float] | None) -> str:
    if value is None:
        return "—"
    mean, low, high = value
    return f"{mean:.3f}" if np.isnan(low) else f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def main() -> None:
    """Run every row on the same splits and print the table and the acceptance lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-implicit-als", action="store_true")
    parser.add_argument("--rmse-budgets", default=str(TrainOptions.rmse_budget))
    args = parser.parse_args()
    budgets = [float(value) for value in args.rmse_budgets.split(",")]
    options = TrainOptions(dataset="movielens-100k")
    _, files = resolve_dataset(options, VeloxSettings())
    spark = get_spark(app_name="velox-bench-ranking", short_job=True)
    prepared = prepare_events(read_events(spark, files.events))
    attributes = read_attributes(files.items, "item_id")
    rows: dict[str, dict[str, Cell]] = {}
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        default = _velox(prepared, attributes, replace(options, model="default"), root)
        print(f"velox train: {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        implicit = _velox(
            prepared, attributes, replace(options, model="implicit", implicit=True), root
        )
        print(f"velox train --implicit: {time.perf_counter() - started:.0f} s")
        others = {}
        for budget in (b for b in budgets if b != options.rmse_budget):
            started = time.perf_counter()
            budgeted = replace(options, model=f"b{budget}", rmse_budget=budget)
            others[budget] = _velox(prepared, attributes, budgeted, root)
            print(f"velox train, rmse_budget {budget}: {time.perf_counter() - started:.0f} s")
    rows["most popular"] = {p: _from_manifest(default, p, "most_popular_") for p in PROTOCOLS}
    if not args.skip_implicit_als:
        rows["implicit ALS, tuned on validation"] = _implicit_als(prepared, options)
    rows["velox train (default)"] = {p: _from_manifest(default, p) for p in PROTOCOLS}
    # Implicit feedback counts every held-out event as relevant (velox train's definition for
    # rewards that are not ratings), so this row is not on the same relevance as the others.
    rows["velox --implicit (any event relevant)"] = {
        p: _from_manifest(implicit, p) for p in PROTOCOLS
    }
    for budget, manifest in others.items():
        rows[f"velox train, rmse_budget {budget}"] = {
            p: _from_manifest(manifest, p) for p in PROTOCOLS
        }
        chosen = manifest.extra["lambda_selection"]
        print(f"rmse_budget {budget}: head {_head(chosen)}")
    spark.stop()
    chosen = default.extra["lambda_selection"]
    print(f"\nvelox default head: {_head(chosen)}")
    for protocol in PROTOCOLS:
        print(f"\n{protocol} (test part; 95 % bootstrap intervals over users)")
        print(f"{'':36} {'RMSE':>28} {'recall@10':>28} {'NDCG@10':>28}")
        for name, cells in rows.items():
            cell = cells[protocol]
            shown = [_show(cell.get(m)) for m in ("rmse", "recall@10", "ndcg@10")]
            print(f"{name:36} {shown[0]:>28} {shown[1]:>28} {shown[2]:>28}")
    _acceptance(rows)


def _acceptance(rows: dict[str, dict[str, Cell]]) -> None:
    ours, popular = rows["velox train (default)"], rows["most popular"]
    reference = rows.get("implicit ALS, tuned on validation")
    print("\nacceptance (issue 25)")
    for protocol in (HEADLINE, "holdout"):
        for metric in ("recall@10", "ndcg@10"):
            mine, base = ours[protocol][metric], popular[protocol][metric]
            apart = mine[1] > base[2]
            line = f"  {protocol} {metric}: {mine[0]:.4f} vs most popular {base[0]:.4f} "
            line += f"({'intervals apart' if apart else 'intervals overlap'})"
            if reference is not None:
                ratio = mine[0] / reference[protocol][metric][0]
                near = "within" if ratio >= 0.95 else "not within"
                line += f"; {ratio:.3f} x implicit ALS ({near} 5 %)"
            print(line)
    rmse = ours["holdout"]["rmse"][0]
    verdict = "within" if rmse <= RMSE_TODAY * 1.01 else "not within"
    print(
        f"  holdout RMSE {rmse:.4f} vs {RMSE_TODAY} ({rmse / RMSE_TODAY - 1:+.1%}, {verdict} 1 %)"
    )


if __name__ == "__main__":
    main()
