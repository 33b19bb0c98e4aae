"""Training job benchmark: each stage's time, next to a plain Spark ALS job in the same run.

    python -m bench.bench_train                        # movielens-100k
    python -m bench.bench_train --synthetic-events 10000000   # also a 10^7-event synthetic set
    python -m bench.bench_train --skip-movielens --no-baseline --synthetic-events 10000000

Every measured job runs in a fresh process (so each pays Spark's start-up, as `velox train`
does) with the dataset already in the cache. The baseline is the simplest honest Spark job on
the same events: a plain `pyspark.ml` ALS (rank 10, regParam 0.1, 10 iterations) fitted on the
same random 80/20 split and scored on its 20%, start-up included.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

MOVIELENS = "movielens-100k"


def _child_train(home: str, dataset: str, events: int) -> dict[str, Any]:
    from batch.options import TrainOptions
    from batch.train_command import run_train
    from velox.settings import VeloxSettings

    options = TrainOptions(dataset=dataset, model="bench", synthetic_events=events)
    manifest = run_train(options, VeloxSettings(home=Path(home)))
    return {"stages": manifest.extra["stage_seconds"], "metrics": manifest.metrics}


def _child_baseline(home: str, dataset: str, events: int) -> dict[str, Any]:
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as sf

    from batch.datasets.reader import read_events, resolve_dataset
    from batch.options import TrainOptions
    from batch.spark import get_spark
    from batch.splits import TEST, random_holdout
    from velox.settings import VeloxSettings

    options = TrainOptions(dataset=dataset, synthetic_events=events)
    _, files = resolve_dataset(options, VeloxSettings(home=Path(home)))
    spark = get_spark(app_name="velox-bench-baseline")
    frame = read_events(spark, files.events)
    indexer = StringIndexer(
        inputCols=["user_id", "item_id"], outputCols=["user_id_ix", "item_id_ix"]
    )
    split = random_holdout(indexer.fit(frame).transform(frame), 0.2, options.seed)
    als = ALS(rank=10, regParam=0.1, maxIter=10, userCol="user_id_ix", itemCol="item_id_ix",
              ratingCol="reward", coldStartStrategy="drop", seed=options.seed)  # fmt: skip
    model = als.fit(split.filter(~sf.col(TEST)))
    scored = model.transform(split.filter(sf.col(TEST)))
    rmse = RegressionEvaluator(labelCol="reward", metricName="rmse").evaluate(scored)
    spark.stop()
    return {"stages": {}, "metrics": {"random_split_rmse": rmse}}


def _measure(kind: str, home: str, dataset: str, events: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.bench_train", "--child", kind, "--home", home,
               "--dataset", dataset, "--synthetic-events", str(events)]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{kind} on {dataset} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def _prepare(home: str, dataset: str, events: int) -> float:
    from batch.datasets.reader import resolve_dataset
    from batch.options import TrainOptions
    from velox.settings import VeloxSettings

    started = time.perf_counter()
    resolve_dataset(
        TrainOptions(dataset=dataset, synthetic_events=events), VeloxSettings(home=Path(home))
    )
    return time.perf_counter() - started


def _report(
    console: Console,
    dataset: str,
    built: float,
    ours: dict[str, Any],
    base: dict[str, Any] | None,
) -> None:
    table = Table("stage", "seconds", title=f"velox train --dataset {dataset}")
    table.add_row("(dataset build/download, cached before timing)", f"{built:.1f}")
    for stage, seconds in ours["stages"].items():
        table.add_row(stage, f"{seconds:.1f}")
    table.add_row(
        "[bold]whole command, wall (incl. start-up, publish, exit)[/bold]", f"{ours['wall']:.1f}"
    )
    console.print(table)
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(ours["metrics"].items()))
    if base is None:
        console.print(f"manifest metrics: {metrics}")
        return
    summary = Table(
        "job", "wall s", "random 80/20 RMSE", title=f"{dataset}: against plain Spark ALS"
    )
    ours_rmse = ours["metrics"].get("random_split_rmse", float("nan"))
    base_rmse = base["metrics"]["random_split_rmse"]
    summary.add_row(
        "velox train (3 fits, evaluation, gate, publish)", f"{ours['wall']:.1f}", f"{ours_rmse:.4f}"
    )
    summary.add_row(
        "baseline: plain ALS rank 10, one fit + score", f"{base['wall']:.1f}", f"{base_rmse:.4f}"
    )
    summary.add_row(
        "ratio velox / baseline",
        f"{ours['wall'] / base['wall']:.2f}x",
        f"{ours_rmse / base_rmse:.3f}x",
    )
    console.print(summary)
    console.print(f"manifest metrics: {metrics}")


def main() -> None:
    """Run the benchmark (or, with --child, one measured job) and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synthetic-events", type=int, default=0, help="also a synthetic set")
    parser.add_argument("--skip-movielens", action="store_true")
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain ALS job")
    parser.add_argument("--home", help="VELOX_HOME to use (default: a fresh temp dir)")
    parser.add_argument("--child", choices=["train", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--dataset", default=MOVIELENS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run = _child_train if args.child == "train" else _child_baseline
        print(json.dumps(run(args.home, args.dataset, args.synthetic_events)))
        return
    console = Console()
    home = args.home or tempfile.mkdtemp(prefix="velox-bench-train-")
    jobs = [] if args.skip_movielens else [(MOVIELENS, 0)]
    if args.synthetic_events:
        jobs.append(("synthetic", args.synthetic_events))
    for dataset, events in jobs:
        built = _prepare(home, dataset, events)
        base = None if args.no_baseline else _measure("baseline", home, dataset, events)
        ours = _measure("train", home, dataset, events)
        _report(
            console,
            dataset if dataset == MOVIELENS else f"synthetic ({events} events)",
            built,
            ours,
            base,
        )


if __name__ == "__main__":
    main()
