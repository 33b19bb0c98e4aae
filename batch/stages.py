"""Run a job as named stages: a spinner (and progress) while each runs, then its duration."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.status import Status

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def concurrently(tasks: Mapping[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run `tasks` in threads and return their results by name (the first error is raised).

    Spark runs jobs from several threads side by side, which fills the cores that one job's
    small stages and driver-side work leave idle.
    """
    with ThreadPoolExecutor(max_workers=max(1, len(tasks))) as pool:
        futures = {name: pool.submit(task) for name, task in tasks.items()}
        return {name: future.result() for name, future in futures.items()}


class StageTimer:
    """Times named stages of a job and reports each one on a rich console.

    While a stage runs, `progress` (when given; e.g. `spark_progress`) says how far it is: on
    a terminal in the spinner's line, updated every second; otherwise (a log, CI) as a line
    every `every_s` seconds, so a long stage never looks stuck.
    """

    def __init__(
        self,
        console: Console | None = None,
        progress: Callable[[], str | None] | None = None,
        every_s: float = 10.0,
    ) -> None:
        """Report on `console` (default: a new stdout console)."""
        self.console = console or Console()
        self.seconds: dict[str, float] = {}
        self.progress = progress
        self.every_s = every_s

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Run the body as stage `name`; its duration is printed and kept in `seconds`."""
        start = time.perf_counter()
        done = threading.Event()
        with self.console.status(f"{name}…") as status:
            reporter = threading.Thread(
                target=self._report, args=(name, start, done, status), daemon=True
            )
            reporter.start()
            try:
                yield
            finally:
                done.set()
                reporter.join()
        elapsed = time.perf_counter() - start
        self.seconds[name] = elapsed
        self.console.print(f"[green]✓[/green] {name} [dim]{elapsed:.1f} s[/dim]")

    def _report(self, name: str, start: float, done: threading.Event, status: Status) -> None:
        terminal = self.console.is_terminal
        while not done.wait(1.0 if terminal else self.every_s):
            where = self.progress() if self.progress is not None else None
            line = f"{name}: {time.perf_counter() - start:.0f} s" + (f", {where}" if where else "")
            if terminal:
                status.update(f"{line}…")
            else:
                self.console.print(f"  … {line}", highlight=False, markup=False)

    @property
    def total(self) -> float:
        """Seconds spent in all stages so far."""
        return sum(self.seconds.values())


def spark_progress(spark: SparkSession) -> str | None:
    """How far the running Spark jobs are: tasks done of the active stages, jobs run so far."""
    tracker = spark.sparkContext.statusTracker()
    stages = [tracker.getStageInfo(stage) for stage in tracker.getActiveStageIds()]
    running = [stage for stage in stages if stage is not None]
    if not running:
        return None
    done = sum(stage.numCompletedTasks for stage in running)
    total = sum(stage.numTasks for stage in running)
    jobs = len(tracker.getJobIdsForGroup())
    return f"Spark: {done}/{total} tasks of {len(running)} active stage(s), {jobs} jobs so far"
