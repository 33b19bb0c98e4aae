"""The `velox` command. Thin: every command imports its implementation lazily."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from velox.errors import VeloxError
from velox.settings import VeloxSettings

app = typer.Typer(help="Velox: online personalization, f(x; theta)^T w_u.", no_args_is_help=True)
models_app = typer.Typer(help="List, promote and roll back snapshot versions.")
app.add_typer(models_app, name="models")
events_app = typer.Typer(help="Find and drop drained feedback events that training skips.")
app.add_typer(events_app, name="events")


class ModelKind(StrEnum):
    """What `velox train` fits: matrix factorization or the deep content model."""

    MF = "mf"
    DEEP = "deep"


WARM_FACTORS = ("als", "joint")
"""`--deep-warm-factors` values: batch.deep.features.WARM_FACTORS (not imported: torch, Spark)."""

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
    deep_warm_factors: Annotated[
        str,
        typer.Option(
            help="--kind deep on ratings: als (known items keep ALS's features, the tower is "
            "distilled onto them) or joint (the two towers trained jointly)."
        ),
    ] = "als",
) -> None:
    """Train f(x; theta) with Spark, evaluate it, publish a snapshot and promote it if it passes."""
    from batch.options import TrainOptions
    from batch.train_command import run_train

    if (dataset is None) == (events is None):
        raise VeloxError("give exactly one of --dataset NAME or --events PATH")
    if device not in ("auto", "cpu", "cuda"):
        raise typer.BadParameter(f"--device must be auto, cpu or cuda, not {device!r}")
    if deep_warm_factors not in WARM_FACTORS:  # a usage error: one line, exit status 2
        choices = " or ".join(WARM_FACTORS)
        typer.echo(
            f"error: --deep-warm-factors must be {choices}, not {deep_warm_factors!r}", err=True
        )
        raise typer.Exit(2)
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
        deep_warm_factors=deep_warm_factors,
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


# The offline loop's commands live in their own module; importing it registers them on `app`.
from velox import cli_jobs  # noqa: E402

__all__ = ["app", "cli_jobs", "main"]
