"""The materialize job: plan on the driver, score parts on the executors, publish the table.

    select users → plan (parts = contiguous user ranges) → staging directory (resumed if a
    crashed build of the same plan left one) → one Spark task per missing part → manifest,
    rename, CURRENT (feature_store.score_tables.publish) → drop old versions → query engine

Nothing is visible to readers before the rename; CURRENT moves only after it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from batch.materialize.errors import MaterializeError
from batch.materialize.part_task import PartTask, run_part
from batch.materialize.plan import Plan, part_rows, split_users
from batch.materialize.scoring import resolve_device
from batch.materialize.staging import build_lock, drop_plan, open_staging, users_digest, users_file
from batch.materialize.users import SelectedUsers, UsersSpec, active_user_ids, read_user_file
from batch.materialize.users import select_users as pick_users
from feature_store.registry import Registry
from feature_store.score_tables.layout import parse_part_name, part_name, staging_dir, tables_dir
from feature_store.score_tables.manifest import PartFile, TableManifest
from feature_store.score_tables.publish import publish_staged_table
from feature_store.snapshot_files import SnapshotFiles, open_snapshot_files

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CRASH_HOOK = "VELOX_MATERIALIZE_CRASH_AT_PART"
"""Test hook: the task of this part index kills its Python worker before writing the part."""

DEFAULT_TOP_N = 500

Progress = Callable[[int, int], None]
"""Called with (parts finished, parts in all) whenever the count grows."""


@dataclass(frozen=True)
class MaterializeOptions:
    """What to materialize: which model version, how many items per user, which users."""

    model: str
    version: int | None = None
    top_n: int | None = DEFAULT_TOP_N
    users: str = "all"
    device: str = "auto"
    master: str | None = None
    keep: int = 2
    events_root: Path | None = None
    rows_per_part: int = 1_000_000


@dataclass(frozen=True)
class MaterializeReport:
    """The published table's manifest, how many parts were written now or resumed, timing."""

    manifest: TableManifest
    written_parts: int
    resumed_parts: int
    device: str
    seconds: float  # from a running Spark session to the published table


def _selected(
    options: MaterializeOptions, files: SnapshotFiles, spark: SparkSession
) -> SelectedUsers:
    import numpy as np

    spec = UsersSpec.parse(options.users)
    ids: list[str] | None = None
    if spec.kind == "path" and spec.path is not None:
        ids = read_user_file(spec.path)
    elif spec.kind == "active":
        if options.events_root is None:
            raise MaterializeError("--users active:DAYS needs the drained feedback log's root")
        ids = active_user_ids(spark, options.events_root, spec.days)
    manifest = files.manifest
    prior = np.asarray(manifest.prior_mean, np.float64)
    return pick_users(ids, files.users, prior, manifest.dim)


def _run_tasks(
    spark: SparkSession,
    tasks: list[PartTask],
    watch: Callable[[], int],
    total: int,
    progress: Progress,
) -> list[tuple[int, str, int]]:
    """Run the tasks as one Spark job; report the parts in staging (of `total`) as they grow."""
    from py4j.protocol import Py4JJavaError

    done = threading.Event()

    def report() -> None:
        seen, stop = -1, False
        while not stop:
            stop = done.wait(0.5)
            count = watch()
            if count != seen:
                seen = count
                progress(count, total)

    reporter = threading.Thread(target=report, name="materialize-progress", daemon=True)
    reporter.start()
    try:
        if not tasks:  # every part was finished by an earlier, crashed run
            return []
        rdd = spark.sparkContext.parallelize(tasks, len(tasks))
        return rdd.map(run_part).collect()
    except Py4JJavaError as error:
        raise MaterializeError(
            f"the Spark job failed; finished parts are kept and a rerun resumes: "
            f"{str(error.java_exception)[:500]}"
        ) from error
    finally:
        done.set()
        reporter.join()


def materialize(
    options: MaterializeOptions,
    root: str,
    *,
    spark: SparkSession | None = None,
    progress: Progress = lambda done, total: None,
) -> MaterializeReport:
    """Build, publish and make current a score table of `options.model` under `root`."""
    from batch.spark import get_spark

    registry = Registry(root)
    storage = registry.storage
    version = options.version or registry.current(options.model)
    if version is None:
        raise MaterializeError(f"model {options.model!r} has no current snapshot version")
    files = open_snapshot_files(storage, options.model, version)
    device = resolve_device(options.device)
    spark = spark or get_spark(options.master, "velox-materialize")
    started = time.perf_counter()  # the job's own time: a Spark start is not materialization
    selected = _selected(options, files, spark)
    n_items = files.items.num_rows
    k = n_items if options.top_n is None else min(options.top_n, n_items)
    users_bytes = users_file(selected.table())
    parallelism = spark.sparkContext.defaultParallelism
    plan = Plan(
        model=options.model,
        snapshot_version=version,
        top_n=options.top_n,
        users_sha256=users_digest(users_bytes),
        parts=split_users(
            len(selected.ids),
            k,
            parallelism,
            part_rows(options.rows_per_part, device, n_items, k),
        ),
    )
    storage.make_dir(tables_dir(options.model))
    with storage.lock(build_lock(options.model)):
        table_version, plan, finished = open_staging(storage, options.model, plan, users_bytes)
        crash_at = os.environ.get(CRASH_HOOK)
        tasks = [
            PartTask(
                root=root,
                model=options.model,
                snapshot_version=version,
                table_version=table_version,
                index=index,
                start=start,
                stop=stop,
                k=k,
                device=device,
                crash=crash_at == str(index),
            )
            for index, (start, stop) in enumerate(plan.parts)
            if part_name(index) not in finished
        ]
        directory = staging_dir(options.model, table_version)

        def count_parts() -> int:
            return sum(parse_part_name(name) is not None for name in storage.list_dir(directory))

        written = _run_tasks(spark, tasks, count_parts, len(plan.parts), progress)
        parts = dict(finished)
        for index, sha256, rows in written:
            parts[part_name(index)] = PartFile(sha256=sha256, rows=rows)
        drop_plan(storage, options.model, table_version)
        manifest = publish_staged_table(
            storage,
            options.model,
            table_version,
            snapshot_version=version,
            top_n=options.top_n,
            users=len(selected.ids),
            items=n_items,
            weights="snapshot",
            attributes=files.items.schema.remove(1).remove(0),
            files=parts,
        )
    return MaterializeReport(
        manifest=manifest,
        written_parts=len(written),
        resumed_parts=len(finished),
        device=device,
        seconds=time.perf_counter() - started,
    )
