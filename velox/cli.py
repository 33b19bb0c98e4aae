"""The `velox` command. Thin: every command imports its implementation lazily."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from velox.errors import VeloxError
from velox.settings import VeloxSettings

app = typer.Typer(help="Velox: online personalization, f(x; theta)^T w_u.", no_args_is_help=True)
models_app = typer.Typer(help="List, promote and roll back snapshot versions.")
app.add_typer(models_app, name="models")

ModelOpt = Annotated[str | None, typer.Option(help="Model name (default: VELOX_MODEL or 'default').")]


def _settings(model: str | None = None) -> VeloxSettings:
    settings = VeloxSettings()
    return settings.model_copy(update={"model": model}) if model else settings


@app.command()
def quickstart(
    dataset: Annotated[str, typer.Option(help="synthetic or movielens-100k")] = "synthetic",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
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
    reg_param: Annotated[float, typer.Option(help="ALS regularization.")] = 0.1,
    iterations: Annotated[int, typer.Option(help="ALS iterations.")] = 15,
    implicit: Annotated[bool, typer.Option(help="Implicit-feedback ALS.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    master: Annotated[str | None, typer.Option(help="Spark master URL (default local[*]).")] = None,
    synthetic_events: Annotated[int, typer.Option(help="Events for --dataset synthetic.")] = 100_000,
    gate_tolerance: Annotated[float, typer.Option(help="Allowed relative regression.")] = 0.02,
    no_promote: Annotated[bool, typer.Option("--no-promote", help="Publish only.")] = False,
) -> None:
    """Train f(x; theta) with Spark, evaluate it, publish a snapshot and promote it if it passes."""
    from batch.options import TrainOptions
    from batch.train_command import run_train

    if (dataset is None) == (events is None):
        raise VeloxError("give exactly one of --dataset NAME or --events PATH")
    settings = _settings(model)
    options = TrainOptions(
        dataset=dataset, events_path=events, model=settings.model, rank=rank,
        reg_param=reg_param, iterations=iterations, implicit=implicit, seed=seed,
        master=master, synthetic_events=synthetic_events, gate_tolerance=gate_tolerance,
        promote=not no_promote,
    )
    run_train(options, settings)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
    model: ModelOpt = None,
) -> None:
    """Serve /predict and /observe with uvicorn."""
    from online.server import run_server

    run_server(_settings(model), host=host, port=port, workers=workers)


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
    """Entry point: run the app and turn Velox errors into a message and exit status 1."""
    try:
        app(standalone_mode=False)
    except VeloxError as error:
        from rich.console import Console

        Console(stderr=True).print(f"[red]error:[/red] {error.message}")
        sys.exit(1)
    except (typer.Exit, typer.Abort) as stop:
        sys.exit(getattr(stop, "exit_code", 1))
    except Exception as error:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(error, click.ClickException):
            error.show()
            sys.exit(error.exit_code)
        raise
