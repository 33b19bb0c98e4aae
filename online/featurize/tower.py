"""The served item tower of one `kind = deep` snapshot, with a feature cache.

torch is imported here lazily (`load`), on the snapshot-loading thread, never at module level.
Features are cached by (model, snapshot version, attributes digest): the same attributes under
the same tower always give the same features.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from feature_store.snapshot import Snapshot
from feature_store.tower.encode import encode_items
from feature_store.tower.spec import TowerSpec

CACHE_ITEMS = 100_000


def digest(attributes: Mapping[str, Any]) -> str:
    """A stable digest of an attribute object (key order does not matter)."""
    text = json.dumps(attributes, sort_keys=True, allow_nan=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class FeatureCache:
    """LRU of (model, version, attributes digest) → features (float32, read-only)."""

    def __init__(self, maxsize: int = CACHE_ITEMS) -> None:
        """Keep at most `maxsize` feature rows."""
        self.maxsize = maxsize
        self._rows: OrderedDict[tuple[str, int, str], NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, str]) -> NDArray[np.float32] | None:
        """The cached row, if any."""
        with self._lock:
            row = self._rows.get(key)
            if row is not None:
                self._rows.move_to_end(key)
            return row

    def put(self, key: tuple[str, int, str], row: NDArray[np.float32]) -> None:
        """Remember one row."""
        row.setflags(write=False)
        with self._lock:
            self._rows[key] = row
            self._rows.move_to_end(key)
            while len(self._rows) > self.maxsize:
                self._rows.popitem(last=False)


def limit_torch_threads(threads: int) -> None:
    """Give torch `threads` intra-op threads in this process (0: leave torch's default).

    The service sets 1 (`VELOX_FEATURIZE_THREADS`): a featurization batch (tens of items through
    a small network) gains nothing from parallel kernels, and torch's OpenMP threads, which
    spin between kernels, took the cores from the event loop. On this 2-vCPU VM, under a 3x
    step to 4,379 items/s (bench/bench_aimd_featurize.py's load, with a watchdog thread
    sampling the stacks), 2 of 10 runs with torch's default of 2 threads had one-second p99s of
    72 and 113 ms, the event loop late in `select` for want of a core; with 1 thread the worst
    of 10 runs was 11.7 ms. The setting is process-wide: service processes set it, `velox
    train` never does.
    """
    if threads > 0:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


class ServedTower:
    """The item tower of one snapshot version, callable on batches of attribute objects."""

    def __init__(self, snapshot: Snapshot, cache: FeatureCache, torch_threads: int = 0) -> None:
        """Build the tower of `snapshot` (imports torch; `limit_torch_threads(torch_threads)`);
        `snapshot` must be of kind deep."""
        from feature_store.tower.network import load_tower

        limit_torch_threads(torch_threads)
        assert snapshot.tower_spec is not None and snapshot.model_weights is not None
        self.model = snapshot.model
        self.version = snapshot.version
        self.spec: TowerSpec = snapshot.tower_spec
        self.cache = cache
        self._tower = load_tower(self.spec, snapshot.model_weights)
        self._lock = threading.Lock()  # one forward pass at a time per tower

    def features(self, batch: Sequence[Mapping[str, Any]]) -> list[NDArray[np.float32]]:
        """One feature row per attribute object, from the cache or one forward pass."""
        from feature_store.tower.network import featurize

        keys = [(self.model, self.version, digest(attributes)) for attributes in batch]
        rows: list[NDArray[np.float32] | None] = [self.cache.get(key) for key in keys]
        missing = [k for k, row in enumerate(rows) if row is None]
        if missing:
            encoded = encode_items(self.spec, [batch[k] for k in missing])
            with self._lock:
                computed = featurize(self._tower, self.spec, encoded)
            for k, row in zip(missing, computed, strict=True):
                fresh = np.array(row, dtype=np.float32)
                self.cache.put(keys[k], fresh)
                rows[k] = fresh
        return [row for row in rows if row is not None]
