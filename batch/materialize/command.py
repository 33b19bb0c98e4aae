"""What `velox materialize` and `velox retrain --materialize` run: build, publish, keep the
newest versions, load into the query engine; progress lines and a one-line summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from batch.materialize.job import (
    DEFAULT_TOP_N,
    MaterializeOptions,
    MaterializeReport,
    Progress,
    materialize,
)
from batch.materialize.scoring import DEVICES
from batch.materialize.users import UsersSpec
from feature_store.score_tables.retention import drop_old_tables
from feature_store.storage import open_storage
from velox.settings import VeloxSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def build_and_load(
    options: MaterializeOptions,
    settings: VeloxSettings,
    *,
    spark: SparkSession | None = None,
    progress: Progress = lambda done, total: None,
) -> MaterializeReport:
    """Materialize and publish a table, drop versions beyond `options.keep`, and load it into
    PostgreSQL when `VELOX_SCORES_URL` is set (DuckDB reads the published files in place)."""
    root = settings.resolved_snapshot_root()
    report = materialize(options, root, spark=spark, progress=progress)
    drop_old_tables(open_storage(root), options.model, options.keep)
    if settings.scores_url:
        from feature_store.score_tables.engines import load_table_into_engine

        load_table_into_engine(settings, options.model, report.manifest.table_version)
    return report


def run_materialize(
    options: MaterializeOptions,
    settings: VeloxSettings,
    console: Console | None = None,
    *,
    spark: SparkSession | None = None,
) -> MaterializeReport:
    """`velox materialize`: build, publish and serve a score table; progress and a summary."""
    out = console or Console()

    def progress(done: int, total: int) -> None:
        out.print(f"[bold]materialize[/bold] {options.model}: {done}/{total} parts")

    report = build_and_load(options, settings, spark=spark, progress=progress)
    manifest = report.manifest
    scores = manifest.users * manifest.items
    out.print(
        f"score table {manifest.table_version} of {manifest.model} (snapshot "
        f"v{manifest.snapshot_version}): {manifest.users} users x {manifest.items} items, "
        f"{manifest.rows} rows in {len(manifest.files)} parts ({report.resumed_parts} resumed) "
        f"on {report.device} in {report.seconds:.1f} s, {scores / report.seconds:.3g} scores/s"
    )
    return report


def materialize_options(
    model: str,
    *,
    version: int | None,
    top_n: int | None,
    all_items: bool,
    users: str,
    device: str,
    master: str | None,
    keep: int,
    events_root: Path,
) -> MaterializeOptions:
    """The job's options from the command line; `ValueError` (a usage error) if they clash."""
    if all_items and top_n is not None:
        raise ValueError("give --top-n N or --all-items, not both")
    if device not in DEVICES:
        raise ValueError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    UsersSpec.parse(users)
    return MaterializeOptions(
        model=model,
        version=version,
        top_n=None if all_items else (top_n or DEFAULT_TOP_N),
        users=users,
        device=device,
        master=master,
        keep=keep,
        events_root=events_root,
    )
