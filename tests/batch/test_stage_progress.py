"""A long stage reports how far it is, so the ~45 s ALS stage never looks stuck (issue 23,
item 8): the timer's progress lines, and Spark's task counts while a job runs."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

from pyspark.sql import SparkSession
from rich.console import Console

from batch.stages import StageTimer, spark_progress


def test_a_running_stage_prints_progress_lines() -> None:
    """Off a terminal, the stage prints `… name: N s, <progress>` while it runs."""
    calls: list[int] = []
    reported = threading.Event()

    def progress() -> str:
        calls.append(1)
        if len(calls) >= 2:
            reported.set()
        return f"{len(calls)} of 9 tasks"

    out = io.StringIO()
    timer = StageTimer(Console(file=out, force_terminal=False), progress=progress, every_s=0.01)
    with timer.stage("ALS features"):
        assert reported.wait(30)
    lines = out.getvalue().splitlines()
    assert any(line.startswith("  … ALS features: ") and "of 9 tasks" in line for line in lines)
    assert lines[-1].startswith("✓ ALS features")


def _wait_for(path: str) -> int:
    deadline = time.monotonic() + 60
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return 1


def test_spark_progress_counts_the_tasks_of_a_running_job(
    spark: SparkSession, tmp_path: Path
) -> None:
    """None while idle; during a job of 4 tasks held at a barrier file, `k/4 tasks`."""
    assert spark_progress(spark) is None
    barrier = str(tmp_path / "release")
    rdd = spark.sparkContext.parallelize(range(4), 4).map(lambda _: _wait_for(barrier))
    job = threading.Thread(target=rdd.count)
    job.start()
    seen = None
    try:
        while seen is None and job.is_alive():
            seen = spark_progress(spark)
            time.sleep(0.05)
    finally:
        Path(barrier).touch()
        job.join()
    assert seen is not None and "/4 tasks of 1 active stage(s)" in seen
