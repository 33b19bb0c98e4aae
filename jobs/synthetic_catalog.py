"""`velox synthetic-catalog`: publish a large synthetic catalog (batch/datasets/large_catalog)."""

from __future__ import annotations

import time

from rich.console import Console

from batch.datasets.large_catalog import CatalogSpec, synthetic_catalog
from feature_store.registry import Registry
from velox.errors import InvalidInputError
from velox.settings import VeloxSettings

MAX_ITEMS = 20_000_000


def run_synthetic_catalog(settings: VeloxSettings, spec: CatalogSpec, *, promote: bool) -> int:
    """Generate, publish (with its ANN index when large enough) and optionally promote."""
    if not 1 <= spec.n_items <= MAX_ITEMS or spec.n_users < 1 or not 2 <= spec.dim <= 1024:
        raise InvalidInputError(
            f"need 1 <= --items <= {MAX_ITEMS}, --users >= 1 and 2 <= --dim <= 1024"
        )
    console = Console()
    started = time.perf_counter()
    data = synthetic_catalog(spec)
    console.print(
        f"generated {spec.n_items} items x d={spec.dim} in {time.perf_counter() - started:.1f} s"
    )
    registry = Registry(settings.resolved_snapshot_root())
    started = time.perf_counter()
    manifest = registry.publish(settings.model, data, promote=promote)
    index = manifest.extra.get("ann_index")
    retrieval = f"ANN index {index['kind']}, nlist {index['nlist']}" if index else "exact scoring"
    console.print(
        f"published {settings.model} v{manifest.version} in {time.perf_counter() - started:.1f} s"
        f" ({retrieval}){'' if promote else ' (not promoted: --no-promote)'}"
    )
    return manifest.version
