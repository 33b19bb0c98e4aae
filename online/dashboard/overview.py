"""The overview panel: each served model, its versions, CURRENT's history and retrain cycles.

Versions and CURRENT come from the registry (manifests are small files, read in a thread);
retrain cycles from the records `jobs/cycle_log.py` keeps in Redis (the key names are
repeated here because `online` does not import `jobs`; a test pins them to jobs'). At most
`MAX_VERSIONS` versions and `MAX_CYCLES` cycle records are read per model.
"""

from __future__ import annotations

import asyncio
from typing import Any

from feature_store.errors import FeatureStoreError
from feature_store.layout import CURRENT
from feature_store.pointer import CurrentPointer
from feature_store.registry import Registry
from online.dashboard.schemas import (
    CycleRow,
    ModelOverview,
    OverviewResponse,
    PointerInfo,
    VersionRow,
)
from online.dashboard.state import DashboardState
from online.redis_scripts import text
from online.served_model import ServedModel
from online.service import Service

MAX_VERSIONS = 20
MAX_CYCLES = 20


def cycle_counts_key(model: str) -> str:
    """Hash of retrain-cycle counts by outcome (jobs.cycle_log.counters_key)."""
    return f"velox:jobs:{{{model}}}:cycles"


def cycle_records_key(model: str) -> str:
    """Stream of the latest retrain-cycle records (jobs.cycle_log.records_key)."""
    return f"velox:jobs:{{{model}}}:cycle_log"


def _versions(registry: Registry, model: str) -> tuple[list[VersionRow], PointerInfo | None]:
    """The last `MAX_VERSIONS` versions of `model`, newest first, and its CURRENT pointer."""
    try:
        raw = registry.storage.read_bytes(f"{model}/{CURRENT}")
        pointer: CurrentPointer | None = CurrentPointer.from_json(raw)
    except (FileNotFoundError, FeatureStoreError):
        pointer = None
    once_current = set(pointer.history) if pointer else set()
    rows = []
    for version in reversed(registry.versions(model)[-MAX_VERSIONS:]):
        try:
            manifest = registry.manifest(model, version)
        except (FileNotFoundError, FeatureStoreError):
            continue
        if pointer is not None and version == pointer.version:
            status = "current"
        else:
            status = "previous" if version in once_current else "published"
        rows.append(
            VersionRow(
                version=version, created_at=manifest.created_at, kind=manifest.kind,
                dim=manifest.dim, metrics=manifest.metrics, parent=manifest.parent,
                status=status,
            )
        )  # fmt: skip
    info = None
    if pointer is not None:
        info = PointerInfo(
            current=pointer.version, history=list(pointer.history), updated_at=pointer.updated_at
        )
    return rows, info


def _cycle(fields: list[Any]) -> CycleRow:
    record = {text(fields[i]): text(fields[i + 1]) for i in range(0, len(fields), 2)}
    version = record.get("version", "")
    return CycleRow(
        trigger=record.get("trigger", ""),
        outcome=record.get("outcome", ""),
        started_at=record.get("started_at", ""),
        seconds=float(record.get("seconds") or 0.0),
        version=int(version) if version.isdigit() else None,
        drained=int(record.get("drained") or 0),
        detail=record.get("detail", ""),
    )


async def _cycles(state: DashboardState, model: str) -> tuple[list[CycleRow], dict[str, int]]:
    entries, counts = await state.redis(
        [
            ("XREVRANGE", cycle_records_key(model), "+", "-", "COUNT", MAX_CYCLES),
            ("HGETALL", cycle_counts_key(model)),
        ]
    )
    pairs = [(text(counts[i]), int(counts[i + 1])) for i in range(0, len(counts), 2)]
    return [_cycle(fields) for _, fields in entries], dict(sorted(pairs))


async def _model(service: Service, state: DashboardState, served: ServedModel) -> ModelOverview:
    manifest = served.snapshot.manifest
    versions, pointer = await asyncio.to_thread(_versions, service.registry, served.name)
    cycles, counts = await _cycles(state, served.name)
    info = served.info()
    return ModelOverview(
        model=served.name,
        version=served.version,
        kind=info["kind"],
        dim=info["dim"],
        items=info["items"],
        created_at=info["created_at"],
        policy=info["policy"],
        lam=manifest.lam,
        noise_std=manifest.noise_std,
        metrics=manifest.metrics,
        pointer=pointer,
        versions=versions,
        cycles=cycles,
        cycle_counts=counts,
    )


async def overview(service: Service, state: DashboardState) -> OverviewResponse:
    """Every served model, sorted by name."""
    current = service.models
    models = [await _model(service, state, served) for _, served in sorted(current.models.items())]
    return OverviewResponse(default_model=current.default, models=models)
