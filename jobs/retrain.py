"""`velox retrain`: drain the feedback log → train on the full history with Spark → evaluate
against the current snapshot → publish, and promote if the gate passes; the service's
snapshot watcher then hot-swaps and rebases each user on first touch (online/rebase.py).

Exactly-once across the loop: the drain (batch/drain.py) moves the log to Parquet and returns
the position it drained to in each log partition; training reads that Parquet plus the base
dataset, and the snapshot records exactly those positions as its training cutoff
(`feature_store.log_cutoff`), so online replays precisely the events training did not see.
The drain trims Redis only up to the cutoffs of the versions that may serve again (the current
one and the `keep_versions - 1` a rollback would return to), because the service replays the
events after them. Killing the job at any stage loses nothing: the drain is crash-safe, nothing
is published before training ends, and publish and promote are atomic; the next run drains
whatever came meanwhile and trains on all of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import reduce
from pathlib import Path

import pyarrow.parquet as pq

from batch.drain import DECISIONS, EVENTS, Drain, DrainReport
from batch.materialize.command import build_and_load
from batch.materialize.job import MaterializeOptions
from batch.options import TrainOptions
from batch.redis_client import SyncRedis
from feature_store.added_items import SyncRedis as ItemsRedis
from feature_store.added_items import added_items_table
from feature_store.log_cutoff import LogCutoff
from feature_store.manifest import Manifest
from feature_store.registry import Registry
from velox.settings import VeloxSettings

ADDED_ITEMS = "added-items"
"""`<VELOX_HOME>/added-items/<model>/added.parquet`: the items added online, for training."""
Stage = Callable[[str], None]
"""Called with a stage's name when it starts (progress reporting, tests)."""


@dataclass(frozen=True)
class RetrainOptions:
    """The base dataset and training options, where the drained log lives, what to keep."""

    train: TrainOptions
    events_root: Path | None = None
    keep_versions: int = 2
    materialize: MaterializeOptions | None = None  # a score table after each promote


@dataclass(frozen=True)
class RetrainReport:
    """What a cycle did: what it drained, the version it published, whether it is current."""

    drained: DrainReport
    manifest: Manifest
    promoted: bool
    seconds: dict[str, float]
    table_version: int | None = None  # the score table built for it, with --materialize


def log_root(settings: VeloxSettings, model: str, family: str = EVENTS.name) -> Path:
    """Where the drained log of `model` lives by default: `<VELOX_HOME>/<family>/<model>/`."""
    return Path(settings.home) / family / model


def protected_cutoff(registry: Registry, model: str, keep_versions: int) -> LogCutoff | None:
    """Per partition, the earliest training cutoff of the versions that may serve again.

    The current version and the `keep_versions - 1` before it (a rollback's targets) replay
    the log entries after their cutoffs, so those entries must stay in Redis.
    """
    current = registry.current(model)
    if current is None:
        return None
    history = registry.history(model)
    previous = history[max(len(history) - keep_versions + 1, 0) :]
    cutoffs = [
        LogCutoff.from_manifest(
            registry.manifest(model, version).training_cutoff, EVENTS.partitions
        )
        for version in (current, *previous)
    ]
    return reduce(LogCutoff.lowest, cutoffs)


def _added_items(client: ItemsRedis, model: str, folder: Path) -> str | None:
    """The items added online (`PUT /items`) as a Parquet attribute table, if any."""
    table = added_items_table(client, model)
    if table is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "added.parquet"
    pq.write_table(table, path)
    return str(path)


def run_retrain(
    options: RetrainOptions,
    settings: VeloxSettings,
    client: SyncRedis,
    *,
    before_promote: Callable[[], None] = lambda: None,
    on_stage: Stage = lambda _: None,
) -> RetrainReport:
    """One cycle; `before_promote` may veto promotion by raising (a lost cycle lock).

    Raises `GateRejectedError` (the new version is published, not promoted) when it is worse
    than the current one.
    """
    from batch.train_command import run_train  # pyspark loads only when a cycle trains

    model = options.train.model
    registry = Registry(settings.resolved_snapshot_root())
    root = options.events_root or log_root(settings, model)
    seconds: dict[str, float] = {}

    on_stage("drain")
    started = time.perf_counter()
    keep = protected_cutoff(registry, model, options.keep_versions)
    drained = Drain(client, model, root).run(keep_after=keep)
    Drain(client, model, log_root(settings, model, DECISIONS.name), DECISIONS).run()
    seconds["drain"] = time.perf_counter() - started

    on_stage("train")
    started = time.perf_counter()
    log_events = str(root) if Drain(client, model, root).files() else None
    manifest = run_train(
        replace(options.train, promote=False),
        settings,
        log_events=log_events,
        training_cutoff=drained.cutoff.to_json(),
        log_items=_added_items(client, model, log_root(settings, model, ADDED_ITEMS)),
    )
    seconds["train"] = time.perf_counter() - started

    promoted = False
    if options.train.promote:
        on_stage("promote")
        before_promote()
        registry.promote(model, manifest.version)
        promoted = True
    table_version = None
    if promoted and options.materialize is not None:
        on_stage("materialize")
        started = time.perf_counter()
        built = build_and_load(replace(options.materialize, version=manifest.version), settings)
        table_version = built.manifest.table_version
        seconds["materialize"] = time.perf_counter() - started
    return RetrainReport(drained, manifest, promoted, seconds, table_version)
