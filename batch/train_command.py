"""`velox train`: dataset → Spark ALS → evaluation → validation gate → published snapshot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from rich.console import Console
from rich.table import Table

from batch.added_items import with_added_items
from batch.datasets.reader import local_bytes, read_attributes, read_events, resolve_dataset
from batch.errors import TrainingError
from batch.evaluate_current import LATEST_EVENT, describe, load_current
from batch.gate import (
    Comparison,
    beats_popularity,
    check_gate,
    check_popularity,
    comparable,
    compare_metrics,
    drops_feedback_log,
    gate_outcome,
    popularity_warnings,
    versus_comparisons,
)
from batch.options import TrainOptions
from batch.prepare import PreparedEvents, prepare_events
from batch.protocol import HEADLINE, protocol_description, run_protocol
from batch.snapshot_builder import build_snapshot_data
from batch.spark import check_master, get_spark, is_local, session_exists, ui_address
from batch.stages import StageTimer, spark_progress
from batch.train_als import FeatureModel, TrainedModel, fit_features
from feature_store.manifest import Manifest
from feature_store.registry import Registry
from velox.settings import VeloxSettings

KINDS = ("mf", "deep")
SHORT_JOB_BYTES = 16 << 20  # events on disk below which the job is short (batch.spark)


def _print_metrics(console: Console, metrics: dict[str, float], gate: list[Comparison]) -> None:
    current = {c.name: c for c in gate}
    table = Table("metric", "value", "current", "change", title="evaluation")
    for name, value in sorted(metrics.items()):
        found = current.get(name)
        if found is None:
            table.add_row(name, f"{value:.4f}", "", "")
            continue
        mark = "[red]worse[/red]" if found.worse else f"{found.change:+.1%}"
        table.add_row(name, f"{value:.4f}", f"{found.current:.4f}", mark)
    for c in gate:  # compared on other rows than the table's (batch.evaluate_current)
        if c.name not in metrics:
            mark = "[red]worse[/red]" if c.worse else f"{c.change:+.1%}"
            table.add_row(c.name, f"{c.new:.4f}", f"{c.current:.4f}", mark)
    console.print(table)


def feature_fitter(
    options: TrainOptions, item_ids: list[str], attributes: pa.Table | None
) -> Callable[[DataFrame, tuple[int, int], TrainOptions], FeatureModel]:
    """How `options.kind` fits item features on a frame: ALS (`mf`) or the two towers."""
    if options.kind == "mf":
        return fit_features
    if options.kind == "deep":
        from batch.deep.features import fit_deep_features  # torch loads only for this kind

        return partial(fit_deep_features, item_ids=item_ids, attributes=attributes)
    raise TrainingError(f"unknown model kind {options.kind!r}; choose one of {', '.join(KINDS)}")


def train_and_publish(
    prepared: PreparedEvents,
    attributes: pa.Table | None,
    options: TrainOptions,
    registry: Registry,
    *,
    dataset: str,
    training_cutoff: str | None = None,
    timer: StageTimer | None = None,
) -> Manifest:
    """Evaluate, train on every event, gate against the current version, publish (and promote).

    `training_cutoff` defaults to the latest event time; a drain job passes its stream id.
    Raises `GateRejectedError` (after publishing unpromoted) when the gate refuses.
    """
    timer = timer or StageTimer()
    fit = feature_fitter(options, prepared.item_ids, attributes)
    holdout: dict[str, Any] = {
        "dataset": dataset,
        "evaluation": protocol_description(options),
        "events": prepared.n_events,
        "users": prepared.n_users,
        "items_with_events": prepared.n_items,
    }
    current = registry.current(options.model)
    previous_extra = registry.manifest(options.model, current).extra if current is not None else {}
    rescore, unable = None, None
    if current is not None and not comparable(holdout, previous_extra):
        # Other holdouts: the current version is re-scored on this run's (evaluate_current).
        ids = (prepared.user_ids, prepared.item_ids)
        rescore, unable = load_current(registry, options.model, current, *ids)
    result = run_protocol(prepared, options, timer, fit, rescore)
    model: TrainedModel = result.model
    metrics = dict(result.metrics)
    extra: dict[str, Any] = {
        **holdout,
        "options": {k: v for k, v in asdict(options).items() if k not in ("master", "promote")},
        "feature_layout": model.features.layout,
        "lambda_selection": {
            "chosen": [result.choice.prior, result.choice.multiplier],
            "exposure_prior": [result.choice.kappa, result.choice.target_fraction],
            "exposure_term": [result.choice.term_beta, result.choice.term_users],
            "lambda_empirical_bayes": model.features.lam_eb,
            "validation": result.candidates,
        },
        "intervals": result.intervals,
        "skipped_events": prepared.skipped,
        LATEST_EVENT: prepared.cutoff,
    }
    gate: list[Comparison] = []
    rescored: str | None = None
    versus = result.versus_current
    served = registry.manifest(options.model, current).metrics if current is not None else {}
    if current is not None and comparable(extra, previous_extra):
        gate = compare_metrics(metrics, served, options.gate_tolerance)
    elif current is not None and rescore is not None and versus is not None:
        if versus["rows"]:
            rescored = describe(versus, current, rescore.seen_until)
            gate = versus_comparisons(versus, HEADLINE, options.gate_tolerance)
        else:
            unable = (
                f"none of this run's {HEADLINE} test rows is after v{current}'s latest "
                "training event (it trained on all of them)"
            )
    baseline = beats_popularity(metrics, result.intervals.get(HEADLINE, {}), HEADLINE, served)
    _print_metrics(timer.console, metrics, gate + baseline)
    # A plain dataset over a model that learned from the feedback log would drop that feedback.
    passed = not any(c.worse for c in gate + baseline) and not (
        current is not None and drops_feedback_log(previous_extra, extra)
    )
    with timer.stage("publish snapshot"):
        data = build_snapshot_data(
            prepared.user_ids,
            prepared.item_ids,
            model,
            attributes,
            kind=options.kind,
            metrics=metrics,
            extra={**extra, "stage_seconds": dict(timer.seconds)},
            training_cutoff=training_cutoff or prepared.cutoff,
        )
        manifest = registry.publish(
            options.model, data, promote=options.promote and passed, parent=current
        )
    verdict = gate_outcome(
        current, previous_extra, extra, gate, options.gate_tolerance,
        rescored=rescored, unable=unable,
    )  # fmt: skip
    for line in verdict:
        timer.console.print(line, markup=False)
    if current is not None:
        check_gate(gate, options.gate_tolerance, current, manifest.version)
    for line in popularity_warnings(baseline):
        timer.console.print(line, markup=False)
    check_popularity(baseline, result.intervals.get(HEADLINE, {}), HEADLINE, manifest.version)
    state = "and made it current" if options.promote and passed else "(not made current)"
    timer.console.print(f"published {options.model} v{manifest.version} {state}")
    return manifest


def _checkpoint_dir(spark: SparkSession, settings: VeloxSettings) -> None:
    # ALS checkpoints every 10 iterations to cut its lineage; without a directory it skips
    # that and long runs can overflow the stack. On a cluster the user sets a shared one.
    context = spark.sparkContext
    if context.getCheckpointDir() is None and is_local(context.master or ""):
        path = Path(settings.home) / "spark-checkpoints"
        path.mkdir(parents=True, exist_ok=True)
        context.setCheckpointDir(str(path))


def run_train(
    options: TrainOptions,
    settings: VeloxSettings,
    *,
    log_events: str | None = None,
    training_cutoff: str | None = None,
    log_items: str | None = None,
) -> Manifest:
    """Train on `options`' dataset with Spark, evaluate, gate and publish; the new manifest.

    Uses the active Spark session if there is one; otherwise starts one on `options.master`
    (default local[*]) and stops it at the end. `velox retrain` (jobs/retrain.py) adds the
    drained feedback log (`log_events`: Parquet in the events schema; the dataset is then
    labelled `<dataset>+log`) and records the log position it drained to (`training_cutoff`),
    and the items added online (`log_items`: Parquet attribute table, batch.added_items).
    """
    timer = StageTimer()
    had_session = session_exists()
    if not had_session and options.master is not None:
        check_master(options.master)  # before the dataset cache is written
    with timer.stage("dataset"):
        dataset, files = resolve_dataset(options, settings)
    sizes = [local_bytes(path) for path in (files.events, log_events) if path is not None]
    known = [size for size in sizes if size is not None]
    short = len(known) == len(sizes) and sum(known) < SHORT_JOB_BYTES
    with timer.stage("start Spark"):
        app = f"velox-train-{options.model}"
        spark = get_spark(options.master, app_name=app, short_job=short)
        _checkpoint_dir(spark, settings)
    timer.progress = partial(spark_progress, spark)  # long stages (ALS) report their tasks
    timer.console.print(
        f"Spark {spark.version} on {spark.sparkContext.master}, UI at "
        f"{ui_address(spark) or 'disabled'}"
    )
    try:
        with timer.stage("read and index events"):
            events = read_events(spark, files.events)
            if log_events is not None:
                events = events.unionByName(read_events(spark, log_events))
                dataset = f"{dataset}+log"
            prepared = prepare_events(events, settings.reward_range())
            attributes = with_added_items(
                read_attributes(files.items, "item_id"), read_attributes(log_items, "item_id")
            )
        timer.console.print(
            f"{dataset}: {prepared.n_events} events, {prepared.n_users} users, "
            f"{prepared.n_items} items, latest event {prepared.cutoff}"
        )
        if prepared.skipped:
            low, high = settings.reward_range()
            timer.console.print(
                f"[yellow]skipped {prepared.skipped} events whose reward is NaN, infinite or "
                f"outside [{low:g}, {high:g}][/yellow] (`velox events check` lists them, "
                "`velox events drop-invalid` removes them from the drained log)"
            )
        registry = Registry(settings.resolved_snapshot_root())
        manifest = train_and_publish(
            prepared,
            attributes,
            options,
            registry,
            dataset=dataset,
            training_cutoff=training_cutoff,
            timer=timer,
        )
        prepared.frame.unpersist()
        return manifest
    finally:
        if not had_session:
            spark.stop()
