"""What `velox materialize` runs: the job with progress lines, then a one-line summary."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from batch.materialize.job import DEFAULT_TOP_N, MaterializeOptions, MaterializeReport, materialize
from batch.materialize.scoring import DEVICES
from batch.materialize.users import UsersSpec
from velox.settings import VeloxSettings


def run_materialize(
    options: MaterializeOptions, settings: VeloxSettings, console: Console | None = None
) -> MaterializeReport:
    """Materialize, publish and make current a score table; print progress and a summary."""
    out = console or Console()

    def progress(done: int, total: int) -> None:
        out.print(f"[bold]materialize[/bold] {options.model}: {done}/{total} parts")

    report = materialize(options, settings.resolved_snapshot_root(), progress=progress)
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
