"""`velox models list | promote VERSION | rollback`: the registry from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from feature_store.errors import SnapshotCorruptError
from feature_store.log_cutoff import LOG_START, LogId
from feature_store.registry import Registry
from velox.settings import VeloxSettings


def _registry(settings: VeloxSettings) -> Registry:
    return Registry(settings.resolved_snapshot_root())


def _metrics(metrics: dict[str, float]) -> str:
    return "\n".join(f"{name}={value:.4g}" for name, value in sorted(metrics.items()))


def cutoff_summary(cutoff: str | None) -> str:
    """One short line for a training cutoff: a time, or the log's latest drained entry time."""
    if not cutoff:
        return ""
    if not cutoff.lstrip().startswith("{"):
        return cutoff[:19].replace("T", " ")
    try:
        positions = [LogId.parse(text) for text in json.loads(cutoff)["positions"]]
    except (ValueError, TypeError, KeyError) as error:
        return f"unreadable ({error})"
    drained = [position for position in positions if position != LOG_START]
    if not drained:
        return "log: nothing drained"
    latest = datetime.fromtimestamp(max(drained).ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"log to {latest} ({len(drained)}/{len(positions)} partitions drained)"


def list_versions(settings: VeloxSettings) -> None:
    """Print a table of the model's versions, the current one marked with `*`."""
    registry, model, console = _registry(settings), settings.model, Console()
    versions = registry.versions(model)
    if not versions:
        console.print(f"no versions of model {model!r} in {registry.storage.description}")
        return
    current = registry.current(model)
    table = Table(title=f"model {model} ({registry.storage.description})")
    for header in ("version", "kind", "dim", "created (UTC)", "parent"):
        table.add_column(header, no_wrap=True)
    table.add_column("cutoff", no_wrap=True)
    table.add_column("metrics", overflow="fold")
    for version in versions:
        name = f"v{version} *" if version == current else f"v{version}"
        try:
            m = registry.manifest(model, version)
        except SnapshotCorruptError as error:
            table.add_row(name, "[red]unreadable[/red]", "", "", "", "", error.message)
            continue
        created = m.created_at[:16].replace("T", " ")
        parent = f"v{m.parent}" if m.parent else ""
        cutoff = cutoff_summary(m.training_cutoff)
        table.add_row(name, m.kind, str(m.dim), created, parent, cutoff, _metrics(m.metrics))
    console.print(table)


def promote(settings: VeloxSettings, version: int) -> None:
    """Verify `version` and make it current."""
    registry, model = _registry(settings), settings.model
    before = registry.current(model)
    registry.promote(model, version)
    was = f" (was v{before})" if before is not None else ""
    Console().print(f"model {model}: v{version} is now current{was}")


def rollback(settings: VeloxSettings) -> None:
    """Switch back to the version that was current before the last promotion."""
    registry, model = _registry(settings), settings.model
    before = registry.current(model)
    version = registry.rollback(model)
    Console().print(f"model {model}: rolled back to v{version} (was v{before})")
