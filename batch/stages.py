"""Run a job as named stages: a spinner while each runs, then its duration, all recorded."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from rich.console import Console


def concurrently(tasks: Mapping[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run `tasks` in threads and return their results by name (the first error is raised).

    Spark runs jobs from several threads side by side, which fills the cores that one job's
    small stages and driver-side work leave idle.
    """
    with ThreadPoolExecutor(max_workers=max(1, len(tasks))) as pool:
        futures = {name: pool.submit(task) for name, task in tasks.items()}
        return {name: future.result() for name, future in futures.items()}


class StageTimer:
    """Times named stages of a job and reports each one on a rich console."""

    def __init__(self, console: Console | None = None) -> None:
        """Report on `console` (default: a new stdout console)."""
        self.console = console or Console()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Run the body as stage `name`; its duration is printed and kept in `seconds`."""
        start = time.perf_counter()
        with self.console.status(f"{name}…"):
            yield
        elapsed = time.perf_counter() - start
        self.seconds[name] = elapsed
        self.console.print(f"[green]✓[/green] {name} [dim]{elapsed:.1f} s[/dim]")

    @property
    def total(self) -> float:
        """Seconds spent in all stages so far."""
        return sum(self.seconds.values())
