"""The optional panels' providers for the parts the service has: score tables, items added
online, and featurization batching (the AIMD batchers' next size and their last batches);
registered by `DashboardState.start` (see `extensions` for the extension point).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np

from feature_store.score_tables.engine import ScoreEngine
from online.dashboard.extensions import Provider
from online.dashboard.schemas import ExtensionMetric
from online.service import Service
from velox.errors import VeloxError


def _age_s(created_at: str) -> float | None:
    try:
        created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (datetime.now(UTC) - created).total_seconds()


def score_tables(engine: ScoreEngine) -> Provider:
    """Per served model: the table served, the snapshot it was built from, its age."""

    async def provide(service: Service) -> list[ExtensionMetric] | None:
        metrics = []
        for name, served in sorted(service.models.models.items()):
            try:  # the engine re-reads the table's CURRENT at most once per poll interval
                table = await asyncio.to_thread(engine.served, name)
            except VeloxError:
                continue
            fresh = "yes" if table.snapshot_version == served.version else "no: snapshot moved on"
            metrics += [
                ExtensionMetric(label=f"{name} table version", value=table.table_version),
                ExtensionMetric(label=f"{name} built from snapshot", value=table.snapshot_version),
                ExtensionMetric(label=f"{name} snapshot served", value=served.version),
                ExtensionMetric(label=f"{name} fresh", value=fresh),
                ExtensionMetric(label=f"{name} age", value=_age_s(table.created_at), unit="s"),
                ExtensionMetric(label=f"{name} rows", value=table.rows),
            ]
        return metrics or None

    return provide


async def items_online(service: Service) -> list[ExtensionMetric] | None:
    """Per served model: items added online (beyond its published catalog), or why none."""
    items = service.items
    if items is None:
        return None
    metrics = []
    for name, served in sorted(service.models.models.items()):
        base = items.base(name)
        if base is None:
            continue
        if base.tower_spec is None:
            why = f"none: kind {base.manifest.kind} has no item tower"
            metrics.append(ExtensionMetric(label=f"{name} items added", value=why))
            continue
        added = served.snapshot.items.n - base.items.n
        metrics.append(ExtensionMetric(label=f"{name} items added", value=added, unit="items"))
    return metrics or None


RECENT_BATCHES = 200


async def featurization(service: Service) -> list[ExtensionMetric] | None:
    """Per tower featurizing: the AIMD controller's next batch size and SLO, and the size and
    latency of its last batches (the batcher keeps the last 1,000)."""
    items = service.items
    if items is None:
        return None
    metrics = []
    for model, version, batcher in items.batchers():
        recent = batcher.batches[-RECENT_BATCHES:]
        if not recent:
            continue
        sizes = np.array([size for size, _ in recent], dtype=np.float64)
        latency_ms = np.array([seconds for _, seconds in recent]) * 1e3
        label = f"{model} v{version}"
        metrics += [
            ExtensionMetric(label=f"{label} next batch size", value=batcher.controller.size),
            ExtensionMetric(label=f"{label} mean batch", value=float(sizes.mean()), unit="items"),
            ExtensionMetric(
                label=f"{label} p99 batch latency",
                value=float(np.percentile(latency_ms, 99)),
                unit="ms",
            ),
            ExtensionMetric(label=f"{label} SLO", value=batcher.controller.slo_s * 1e3, unit="ms"),
            ExtensionMetric(label=f"{label} batches seen", value=len(recent)),
        ]
    return metrics or None
