"""Items added online, kept in Redis and served by every worker (`PUT /items/{item}`).

Each worker keeps the added items' attributes, reloads them when the Redis change counter
moves (checked after every snapshot poll, so within one poll interval), and installs its
served model again with the catalog extended by the added items it does not know yet. A new
snapshot version goes through the same extension inside `Service.install`, so its tower has
featurized every added item before the version is swapped in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from feature_store.added_items import (
    SyncRedis,
    added_items_seq,
    put_added_item,
    read_added_items,
)
from feature_store.snapshot import Snapshot
from online.errors import ServiceError
from online.featurize.aimd import AimdController
from online.featurize.batcher import AdaptiveBatcher
from online.featurize.catalog import extend_snapshot
from online.featurize.tower import FeatureCache, ServedTower

log = logging.getLogger("velox.online.items")
Request = Mapping[str, Any]


class NoItemTowerError(ServiceError):
    """The served snapshot cannot featurize items (kind mf); 409."""

    status = 409


class AddedItems:
    """The added items of every served model, and the towers that featurize them."""

    def __init__(
        self,
        client: SyncRedis,
        lock: threading.RLock,
        *,
        slo_s: float = 0.02,
        max_wait_s: float = 0.002,
        torch_threads: int = 0,
    ) -> None:
        """Read and write added items through `client` (redis-py, used from threads);
        `lock` is the service's install lock (one lock: no order to get wrong);
        `torch_threads` (0: torch's default) is set once a tower is loaded."""
        self.client = client
        self.torch_threads = torch_threads
        self.slo_s = slo_s
        self.max_wait_s = max_wait_s
        self.cache = FeatureCache()
        self._attributes: dict[str, dict[str, dict[str, Any]]] = {}
        self._seq: dict[str, int] = {}
        self._base: dict[str, Snapshot] = {}
        self._towers: dict[str, ServedTower] = {}
        self._batchers: dict[tuple[str, int], AdaptiveBatcher[Request, NDArray[np.float32]]] = {}
        self._lock = lock

    def batchers(self) -> list[tuple[str, int, AdaptiveBatcher[Request, NDArray[np.float32]]]]:
        """(model, version, batcher) of every tower featurizing now, for the dashboard."""
        return [(model, version, b) for (model, version), b in sorted(self._batchers.items())]

    def base(self, model: str) -> Snapshot | None:
        """The snapshot of `model` as published (without added items)."""
        return self._base.get(model)

    def tower(self, model: str) -> ServedTower:
        """The item tower of the version of `model` being served (409 for kind mf)."""
        tower = self._towers.get(model)
        if tower is None:
            base = self._base.get(model)
            kind = base.manifest.kind if base is not None else "unknown"
            raise NoItemTowerError(
                f"model {model!r} is of kind {kind!r}: it has no item tower to featurize new "
                "items (train it with --kind deep)"
            )
        return tower

    def extend(self, snapshot: Snapshot) -> Snapshot:
        """`snapshot` with every added item it does not know, featurized by its own tower."""
        model = snapshot.model
        with self._lock:
            self._base[model] = snapshot
            if snapshot.tower_spec is None:
                self._towers.pop(model, None)
                return snapshot
            tower = self._towers.get(model)
            if tower is None or tower.version != snapshot.version:
                tower = ServedTower(snapshot, self.cache, self.torch_threads)
                self._towers[model] = tower
            if model not in self._seq:
                self._reload(model)
            added = {
                item: attrs
                for item, attrs in self._attributes.get(model, {}).items()
                if item not in snapshot.item_index
            }
        if not added:
            return snapshot
        items = sorted(added)
        rows = [added[item] for item in items]
        return extend_snapshot(snapshot, items, rows, np.stack(tower.features(rows)))

    def _reload(self, model: str) -> bool:
        seq = added_items_seq(self.client, model)
        if seq == self._seq.get(model):
            return False
        self._attributes[model] = read_added_items(self.client, model)
        self._seq[model] = seq
        return True

    def poll(self, install: Callable[[Snapshot], object]) -> None:
        """Reinstall every model whose added items changed in Redis (the watcher's thread)."""
        for model in list(self._base):
            try:
                with self._lock:
                    if self._reload(model):
                        install(self._base[model])
            except Exception as error:  # keep serving what is installed
                log.error("cannot refresh the added items of %s: %s", model, error)

    async def featurize(self, model: str, attributes: Request) -> NDArray[np.float32]:
        """The features of one attribute object under the served tower (AIMD-batched)."""
        tower = self.tower(model)
        key = (model, tower.version)
        batcher = self._batchers.get(key)
        if batcher is None:
            controller = AimdController(slo_s=self.slo_s)
            batcher = AdaptiveBatcher(tower.features, controller, self.max_wait_s)
            self._batchers = {k: b for k, b in self._batchers.items() if k[0] != model}
            self._batchers[key] = batcher
        return await batcher.submit(attributes)

    def add(
        self,
        model: str,
        item: str,
        attributes: dict[str, Any],
        install: Callable[[Snapshot], object],
    ) -> None:
        """Persist one item in Redis, then serve it here at once (the other workers poll)."""
        seq = put_added_item(self.client, model, item, attributes)
        with self._lock:
            self._attributes.setdefault(model, {})[item] = attributes
            if seq == self._seq.get(model, 0) + 1:
                self._seq[model] = seq  # else another writer came between: the poll reloads
            install(self._base[model])

    async def close(self) -> None:
        """Stop the batchers."""
        for batcher in self._batchers.values():
            await batcher.close()
