"""The `velox` command. Thin: every command imports its implementation lazily."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from velox.errors import VeloxError
from velox.settings import VeloxSettings

if TYPE_CHECKING:
    from jobs.retrain import RetrainOptions

app = typer.Typer(help="Velox: online personalization, f(x; theta)^T w_u.", no_args_is_help=True)
models_app = typer.Typer(help="List, promote and roll back snapshot versions.")
app.add_typer(models_app, name="models")
events_app = typer.Typer(help="Find and drop drained feedback events that training skips.")
app.add_typer(events_app, name="events")


class ModelKind(StrEnum):
    """What `velox train` fits: matrix factorization or the deep content model."""

    MF = "mf"
    DEEP = "deep"


ModelOpt = Annotated[
    str | None, typer.Option(help="Model name (default: VELOX_MODEL or 'default').")
]


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"velox {version('velox-serving')}")
        raise typer.Exit()


@app.callback()
def _global_options(
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Print the full traceback of a failure.")
    ] = False,
    _version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_show_version, help="Print the version."),
    ] = False,
) -> None:
    """Velox: online personalization, f(x; theta)^T w_u."""
    from velox.cli_errors import configure_logging

    configure_logging(verbose)


def _settings(model: str | None = None) -> VeloxSettings:
    settings = VeloxSettings()
    return settings.model_copy(update={"model": model}) if model else settings


@app.command()
def quickstart(
    dataset: Annotated[str, typer.Option(help="synthetic or movielens-100k")] = "synthetic",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Stop after publishing.")] = False,
    model: ModelOpt = None,
) -> None:
    """Build a dataset, train with Spark (local), publish a snapshot and serve it."""
    from jobs.quickstart import run_quickstart

    run_quickstart(_settings(model), dataset=dataset, port=port, serve=not no_serve)


@app.command()
def train(
    dataset: Annotated[str | None, typer.Option(help="synthetic or movielens-100k")] = None,
    events: Annotated[str | None, typer.Option(help="Parquet/CSV events to train on.")] = None,
    model: ModelOpt = None,
    rank: Annotated[int, typer.Option(help="Factorization rank.")] = 16,
    reg_param: Annotated[float, typer.Option(help="ALS regularization.")] = 0.15,
    iterations: Annotated[int, typer.Option(help="ALS iterations.")] = 8,
    implicit: Annotated[bool, typer.Option(help="Implicit-feedback ALS.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    master: Annotated[str | None, typer.Option(help="Spark master URL (default local[*]).")] = None,
    synthetic_events: Annotated[
        int, typer.Option(help="Events for --dataset synthetic.")
    ] = 100_000,
    gate_tolerance: Annotated[float, typer.Option(help="Allowed relative regression.")] = 0.02,
    no_promote: Annotated[bool, typer.Option("--no-promote", help="Publish only.")] = False,
    kind: Annotated[
        ModelKind, typer.Option(help="mf: ALS factors; deep: the torch two-tower content model.")
    ] = ModelKind.MF,
    epochs: Annotated[int, typer.Option(help="Training epochs of --kind deep.")] = 6,
    device: Annotated[str, typer.Option(help="--kind deep: auto, cpu or cuda.")] = "auto",
) -> None:
    """Train f(x; theta) with Spark, evaluate it, publish a snapshot and promote it if it passes."""
    from batch.options import TrainOptions
    from batch.train_command import run_train

    if (dataset is None) == (events is None):
        raise VeloxError("give exactly one of --dataset NAME or --events PATH")
    if device not in ("auto", "cpu", "cuda"):
        raise typer.BadParameter(f"--device must be auto, cpu or cuda, not {device!r}")
    settings = _settings(model)
    options = TrainOptions(
        dataset=dataset,
        events_path=events,
        model=settings.model,
        rank=rank,
        reg_param=reg_param,
        iterations=iterations,
        implicit=implicit,
        seed=seed,
        master=master,
        synthetic_events=synthetic_events,
        gate_tolerance=gate_tolerance,
        promote=not no_promote,
        kind=kind.value,
        deep_epochs=epochs,
        device=device,
    )
    run_train(options, settings)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
    model: ModelOpt = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Serve a non-loopback address with no API key.")
    ] = False,
) -> None:
    """Serve /predict and /observe with uvicorn."""
    from online.access import AccessConfigError
    from online.server import run_server

    try:
        run_server(_settings(model), host=host, port=port, workers=workers, insecure=insecure)
    except AccessConfigError as error:  # a usage error: one line, exit status 2
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(2) from None


@app.command("synthetic-catalog")
def synthetic_catalog(
    items: Annotated[int, typer.Option(help="Catalog size.")] = 1_000_000,
    dim: Annotated[int, typer.Option(help="Feature dimension d (the last is the bias).")] = 64,
    users: Annotated[int, typer.Option(help="Users with batch weights.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    model: ModelOpt = None,
    no_promote: Annotated[bool, typer.Option("--no-promote", help="Publish only.")] = False,
) -> None:
    """Publish a synthetic catalog (skewed item norms, attributes) to measure large catalogs."""
    from batch.datasets.large_catalog import CatalogSpec
    from jobs.synthetic_catalog import run_synthetic_catalog

    spec = CatalogSpec(n_items=items, dim=dim, n_users=users, seed=seed)
    run_synthetic_catalog(_settings(model), spec, promote=not no_promote)


@app.command()
def materialize(
    model: ModelOpt = None,
    version: Annotated[
        int | None, typer.Option(min=1, help="Snapshot version (default: the current one).")
    ] = None,
    top_n: Annotated[int | None, typer.Option(min=1, help="Items kept per user [500].")] = None,
    all_items: Annotated[
        bool, typer.Option("--all-items", help="Keep every item for every user.")
    ] = False,
    users: Annotated[str, typer.Option(help="all, active:DAYS or a file of user ids.")] = "all",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    master: Annotated[str | None, typer.Option(help="Spark master URL (default local[*]).")] = None,
    keep: Annotated[int, typer.Option(min=1, help="Score table versions kept.")] = 2,
) -> None:
    """Score every user against every item and publish a top-N score table (Spark job)."""
    from batch.materialize.command import materialize_options, run_materialize
    from jobs.retrain import log_root

    settings = _settings(model)
    try:
        options = materialize_options(
            settings.model,
            version=version,
            top_n=top_n,
            all_items=all_items,
            users=users,
            device=device,
            master=master,
            keep=keep,
            events_root=log_root(settings, settings.model),
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    run_materialize(options, settings)


@app.command()
def query(
    user: Annotated[str, typer.Option(help="The user whose top items to show.")],
    where: Annotated[
        str | None, typer.Option(help="Filter, e.g. \"price < 20 and genres contains 'Comedy'\".")
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=1000, help="Items to show.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    model: ModelOpt = None,
) -> None:
    """A user's top-k from the current score table (no model in the loop)."""
    from feature_store.score_tables.commands import run_query
    from velox.errors import InvalidInputError

    try:
        run_query(_settings(model), user, k, where, as_json=as_json)
    except InvalidInputError as error:  # a malformed --where or model name: a usage error
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(2) from None


@models_app.command("list")
def models_list(model: ModelOpt = None) -> None:
    """List the published versions of a model and mark the current one."""
    from feature_store.commands import list_versions

    list_versions(_settings(model))


@models_app.command("promote")
def models_promote(version: int, model: ModelOpt = None) -> None:
    """Make VERSION the current version."""
    from feature_store.commands import promote

    promote(_settings(model), version)


@models_app.command("rollback")
def models_rollback(model: ModelOpt = None) -> None:
    """Switch back to the version that was current before the last promotion."""
    from feature_store.commands import rollback

    rollback(_settings(model))


def main() -> None:
    """Entry point: usage errors exit 2 with click's message, failures print one line (exit 1)."""
    from velox.cli_errors import run_cli

    sys.exit(run_cli(app))


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
