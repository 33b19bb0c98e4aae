"""What `velox retrain` and `velox scheduler` run: training options from the flags and the
current snapshot, the retrain cycle under the cycle lock, a printed summary."""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping
from dataclasses import fields, replace
from types import FrameType
from typing import Any

import redis
from rich.console import Console

from batch.errors import GateRejectedError
from batch.options import TrainOptions
from batch.redis_client import RedisUnreachableError, SyncRedis, redis_client
from feature_store.registry import Registry
from jobs.cycle_lock import Lease
from jobs.cycle_log import CycleRecord, Outcome
from jobs.cycle_runner import Cycle, CycleResult, CycleRunner
from jobs.errors import CycleBusyError, JobError
from jobs.retrain import RetrainOptions, run_retrain
from jobs.scheduler import ScheduleOptions, Scheduler
from velox.settings import VeloxSettings


def train_options(
    settings: VeloxSettings,
    *,
    dataset: str | None,
    events: str | None,
    overrides: Mapping[str, Any],
) -> TrainOptions:
    """The options the current version of the model was trained with (its manifest keeps
    them), with the base dataset (`dataset` or `events`) and the non-None `overrides` given."""
    model = settings.model
    registry = Registry(settings.resolved_snapshot_root())
    current = registry.current(model)
    stored = registry.manifest(model, current).extra.get("options") if current else None
    if isinstance(stored, dict):
        names = {field.name for field in fields(TrainOptions)}
        base = TrainOptions(**{k: v for k, v in stored.items() if k in names})
    elif dataset is None and events is None:
        raise JobError(
            f"model {model!r} has no current version trained by velox: give --dataset or --events"
        )
    else:
        base = TrainOptions()
    if dataset is not None or events is not None:
        base = replace(base, dataset=dataset, events_path=events)
    chosen = {key: value for key, value in overrides.items() if value is not None}
    return replace(base, **chosen, model=model)


def connect(redis_url: str) -> SyncRedis:
    """A client of the jobs' Redis (or Redis Cluster); one clear error at once when it cannot
    be reached."""
    try:
        client = redis_client(redis_url)
        client.ping()
    except (redis.RedisError, RedisUnreachableError) as error:
        raise JobError(
            f"cannot reach Redis at {redis_url} ({error}): start it, or fix or unset "
            "VELOX_REDIS_URL (unset, velox starts an embedded Redis)"
        ) from error
    return client


def retrain_cycle(
    options: RetrainOptions, settings: VeloxSettings, client: SyncRedis, console: Console
) -> Cycle:
    """The cycle the runner calls: one `run_retrain`, promoting only while the lock is held."""

    def cycle(lease: Lease) -> CycleResult:
        report = run_retrain(
            options,
            settings,
            client,
            before_promote=lease.check,
            on_stage=lambda name: console.print(f"[bold]retrain[/bold]: {name}"),
        )
        version = report.manifest.version
        console.print(
            f"drained {report.drained.entries} events in {len(report.drained.batches)} "
            f"batch(es); published {options.train.model} v{version}"
            + (", promoted" if report.promoted else ", not promoted (--no-promote)")
        )
        if report.table_version is not None:
            console.print(f"score table {report.table_version} materialized from v{version}")
        timing = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report.seconds.items())
        console.print(f"stages: {timing}")
        return CycleResult(
            version=version,
            promoted=report.promoted,
            drained=report.drained.entries,
            detail=f"v{version} " + ("promoted" if report.promoted else "published only"),
        )

    return cycle


def retrain_command(
    settings: VeloxSettings, options: RetrainOptions, redis_url: str, *, lock_ttl_s: float = 60.0
) -> CycleRecord:
    """One manual cycle (`velox retrain`); a cycle that did not promote raises, to exit 1."""
    client = connect(redis_url)
    console = Console()
    cycle = retrain_cycle(options, settings, client, console)
    record = CycleRunner(client, options.train.model, cycle, lock_ttl_s=lock_ttl_s).run("manual")
    console.print(f"cycle {record.outcome.value} in {record.seconds:.1f} s")
    if record.outcome is Outcome.BUSY:
        raise CycleBusyError(record.detail)
    if record.outcome is Outcome.REJECTED:
        raise GateRejectedError(record.detail)
    if record.outcome is Outcome.FAILED:
        raise JobError(f"the retrain cycle failed: {record.detail}")
    return record


def scheduler_command(
    settings: VeloxSettings,
    options: RetrainOptions,
    schedule: ScheduleOptions,
    redis_url: str,
    *,
    max_cycles: int | None = None,
) -> list[CycleRecord]:
    """Run `velox scheduler` until SIGINT/SIGTERM (or `max_cycles` cycles)."""
    client = connect(redis_url)
    console = Console()
    registry = Registry(settings.resolved_snapshot_root())
    cycle = retrain_cycle(options, settings, client, console)
    scheduler = Scheduler(client, registry, options.train.model, schedule, cycle)
    stop = threading.Event()

    def request_stop(signum: int, _: FrameType | None) -> None:
        console.print(f"stopping after the current cycle ({signal.Signals(signum).name})")
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    console.print(f"[bold]velox scheduler[/bold] for {options.train.model}: {schedule}")
    return scheduler.run(stop, max_cycles=max_cycles)
