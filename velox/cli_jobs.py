"""The `velox` commands of the offline loop: events, simulate, evaluate-policy, retrain and the
scheduler (registered on `velox.cli.app`, which imports this module)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from velox.cli import ModelOpt, _settings, app, events_app
from velox.settings import VeloxSettings

if TYPE_CHECKING:
    from jobs.retrain import RetrainOptions


EventsRootOpt = Annotated[
    str | None, typer.Option(help="Drained feedback log (default <home>/events/<model>).")
]


def _events_command(model: str | None, events_root: str | None, *, drop: bool) -> None:
    from pathlib import Path

    from jobs.events_command import run_events_check
    from jobs.retrain import log_root

    settings = _settings(model)
    root = Path(events_root) if events_root else log_root(settings, settings.model)
    run_events_check(root, settings.reward_range(), drop=drop)


@events_app.command("check")
def events_check(model: ModelOpt = None, events_root: EventsRootOpt = None) -> None:
    """Count drained events whose reward is NaN, infinite or outside VELOX_REWARD_MIN/MAX."""
    _events_command(model, events_root, drop=False)


@events_app.command("drop-invalid")
def events_drop_invalid(model: ModelOpt = None, events_root: EventsRootOpt = None) -> None:
    """Rewrite the drained log without those events (kept aside in its _dropped folder)."""
    _events_command(model, events_root, drop=True)


@app.command()
def simulate(
    *,
    dataset: Annotated[str, typer.Option(help="movielens-100k or synthetic")] = "movielens-100k",
    policy: Annotated[
        list[str] | None,
        typer.Option(
            help="Policy spec (repeat for several; default: greedy, egreedy:0.05, "
            "thompson, linucb)."
        ),
    ] = None,
    steps: Annotated[int, typer.Option(help="Interactions to simulate.")] = 20_000,
    seed: Annotated[
        int, typer.Option(help="Seed of the held-out cohort, the draws, the policies.")
    ] = 0,
    plot: Annotated[str | None, typer.Option(help="Write a PNG of cumulative reward here.")] = None,
    cohort: Annotated[int, typer.Option(help="Held-out users the learner never saw.")] = 100,
    slate_size: Annotated[int, typer.Option(help="Items shown per interaction.")] = 1,
    candidates: Annotated[
        int | None, typer.Option(help="Random candidates per visit (default: the catalog).")
    ] = None,
    no_repeat: Annotated[
        bool, typer.Option("--no-repeat", help="Never show a user an item twice.")
    ] = False,
    learner: Annotated[
        str,
        typer.Option(
            help="Learner's item features: velox-train (the snapshot's recipe) or biased-als."
        ),
    ] = "velox-train",
) -> None:
    """Run policies against a hidden reward model built from held-out ratings; print JSON."""
    from pathlib import Path

    from jobs.simulation.command import run_simulate
    from jobs.simulation.environment import SimulationSetting

    setting = SimulationSetting(
        cohort=cohort, slate_size=slate_size, candidates=candidates, repeat=not no_repeat,
        learner=learner,
    )  # fmt: skip
    run_simulate(
        _settings(),
        dataset=dataset,
        policies=policy or [],
        steps=steps,
        seed=seed,
        setting=setting,
        plot=Path(plot) if plot else None,
    )


@app.command("evaluate-policy")
def evaluate_policy(
    *,
    policy: Annotated[str, typer.Option(help="Target policy spec, e.g. egreedy:0.1.")],
    logs: Annotated[
        str | None,
        typer.Option(
            help="Parquet decision log joined with rewards (default: the model's drained "
            "decision and feedback logs under VELOX_HOME)."
        ),
    ] = None,
    missing_reward: Annotated[
        float | None,
        typer.Option(help="Reward of a shown item that got none (default: leave its answer out)."),
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="Snapshot version (default: current).")
    ] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    confidence: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and Monte-Carlo draws.")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON, not a table.")] = False,
    model: ModelOpt = None,
) -> None:
    """Estimate a policy's value from logged decisions: IPS, SNIPS, DR with bootstrap CIs."""
    from pathlib import Path

    from jobs.evaluate_policy import run_evaluate_policy

    run_evaluate_policy(
        _settings(model),
        logs=Path(logs) if logs else None,
        policy=policy,
        version=version,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
        as_json=json_output,
        missing_reward=missing_reward,
    )


BaseDatasetOpt = Annotated[
    str | None, typer.Option(help="Base dataset (default: the current version's).")
]
BaseEventsOpt = Annotated[
    str | None, typer.Option("--events", help="Base events Parquet/CSV instead of a dataset.")
]
RankOpt = Annotated[int | None, typer.Option(help="Factorization rank (default: as before).")]
RegOpt = Annotated[float | None, typer.Option(help="ALS regularization (default: as before).")]
IterationsOpt = Annotated[int | None, typer.Option(help="ALS iterations (default: as before).")]
SyntheticOpt = Annotated[
    int | None, typer.Option(help="Events of a synthetic base dataset (default: as before).")
]
MasterOpt = Annotated[str | None, typer.Option(help="Spark master URL (default local[*]).")]
ToleranceOpt = Annotated[float, typer.Option(help="Allowed relative regression.")]
NoPromoteOpt = Annotated[bool, typer.Option("--no-promote", help="Publish only.")]
LogRootOpt = Annotated[
    str | None, typer.Option(help="Drained feedback log (default <home>/events/<model>).")
]
KeepOpt = Annotated[
    int, typer.Option(min=1, help="Versions (current + rollback targets) kept replayable.")
]


@contextmanager
def _redis_for_jobs(settings: VeloxSettings) -> Iterator[str]:
    """VELOX_REDIS_URL; else the embedded Redis of a running `velox serve`, or one started now."""
    if settings.redis_url is not None:
        yield settings.redis_url
        return
    import redis

    from online.embedded_redis import EmbeddedRedis

    embedded = EmbeddedRedis(settings.embedded_redis_dir())
    try:
        redis.Redis.from_url(embedded.url, socket_timeout=1.0).ping()
    except (redis.ConnectionError, redis.TimeoutError):
        with embedded:
            yield embedded.url
        return
    yield embedded.url


def _retrain_options(
    settings: VeloxSettings,
    *,
    dataset: str | None,
    events: str | None,
    events_root: str | None,
    keep_versions: int,
    **overrides: object,
) -> RetrainOptions:
    from pathlib import Path

    from jobs.commands import train_options
    from jobs.retrain import RetrainOptions

    train = train_options(settings, dataset=dataset, events=events, overrides=overrides)
    root = Path(events_root) if events_root else None
    return RetrainOptions(train=train, events_root=root, keep_versions=keep_versions)


@app.command()
def retrain(
    *,
    dataset: BaseDatasetOpt = None,
    events: BaseEventsOpt = None,
    model: ModelOpt = None,
    rank: RankOpt = None,
    reg_param: RegOpt = None,
    iterations: IterationsOpt = None,
    synthetic_events: SyntheticOpt = None,
    master: MasterOpt = None,
    gate_tolerance: ToleranceOpt = 0.02,
    no_promote: NoPromoteOpt = False,
    events_root: LogRootOpt = None,
    keep_versions: KeepOpt = 2,
    materialize_table: Annotated[
        bool,
        typer.Option("--materialize", help="After a promote, build its top-500 score table."),
    ] = False,
) -> None:
    """Drain the feedback log, retrain on everything, gate, publish and promote (one cycle)."""
    from dataclasses import replace

    from batch.materialize.job import MaterializeOptions
    from jobs.commands import retrain_command
    from jobs.retrain import log_root

    settings = _settings(model)
    options = _retrain_options(
        settings,
        dataset=dataset,
        events=events,
        events_root=events_root,
        keep_versions=keep_versions,
        rank=rank,
        reg_param=reg_param,
        iterations=iterations,
        synthetic_events=synthetic_events,
        master=master,
        gate_tolerance=gate_tolerance,
        promote=not no_promote,
    )
    if materialize_table:
        table = MaterializeOptions(
            model=settings.model, master=master, events_root=log_root(settings, settings.model)
        )
        options = replace(options, materialize=table)
    with _redis_for_jobs(settings) as url:
        retrain_command(settings, options, url)


@app.command()
def scheduler(
    *,
    interval: Annotated[float | None, typer.Option(help="Seconds between cycles.")] = None,
    cron: Annotated[str | None, typer.Option(help="Cron expression of the cycles (UTC).")] = None,
    drift_threshold: Annotated[
        float | None, typer.Option(help="Retrain when online RMSE > validation x (1 + this).")
    ] = None,
    drift_window: Annotated[float, typer.Option(help="Seconds of the rolling window.")] = 900.0,
    drift_min_events: Annotated[int, typer.Option(help="Fewest events to judge drift.")] = 200,
    drift_metric: Annotated[str, typer.Option(help="Validation metric.")] = "holdout_rmse",
    check_every: Annotated[float, typer.Option(help="Seconds between checks.")] = 30.0,
    lock_ttl: Annotated[float, typer.Option(help="Seconds a dead holder keeps the lock.")] = 60.0,
    max_cycles: Annotated[int | None, typer.Option(help="Stop after this many cycles.")] = None,
    dataset: BaseDatasetOpt = None,
    events: BaseEventsOpt = None,
    model: ModelOpt = None,
    rank: RankOpt = None,
    reg_param: RegOpt = None,
    iterations: IterationsOpt = None,
    synthetic_events: SyntheticOpt = None,
    master: MasterOpt = None,
    gate_tolerance: ToleranceOpt = 0.02,
    events_root: LogRootOpt = None,
    keep_versions: KeepOpt = 2,
) -> None:
    """Run the retrain cycle on an interval or cron schedule and when the served model drifts."""
    from jobs.commands import scheduler_command
    from jobs.scheduler import ScheduleOptions

    settings = _settings(model)
    schedule = ScheduleOptions(
        interval_s=interval,
        cron=cron,
        drift_threshold=drift_threshold,
        drift_window_s=drift_window,
        drift_min_events=drift_min_events,
        drift_metric=drift_metric,
        check_every_s=check_every,
        lock_ttl_s=lock_ttl,
    )
    schedule.validate()
    options = _retrain_options(
        settings,
        dataset=dataset,
        events=events,
        events_root=events_root,
        keep_versions=keep_versions,
        rank=rank,
        reg_param=reg_param,
        iterations=iterations,
        synthetic_events=synthetic_events,
        master=master,
        gate_tolerance=gate_tolerance,
    )
    with _redis_for_jobs(settings) as url:
        scheduler_command(settings, options, schedule, url, max_cycles=max_cycles)
