"""Run a job as named stages: a spinner while each runs, then its duration, all recorded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console


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
