"""The service object a request works with: settings, weight store, served models, policies."""

from __future__ import annotations

import threading

from feature_store.registry import Registry
from feature_store.snapshot import Snapshot
from online.collector import freeze_late_imports
from online.featurize.added_items import AddedItems
from online.metrics import ServiceMetrics
from online.policy_book import PolicyBook
from online.selection_batch import SelectionBatch
from online.served_model import ModelSet, ServedModel
from online.settings import ServiceSettings
from online.snapshot_watcher import SnapshotWatcher
from online.weight_store import WeightStore
from velox.policies import make_policy
from velox.policies.calibration import calibrated_thompson_scale


class Service:
    """Holds the current `ModelSet` (swapped whole by the watcher) and the shared parts."""

    def __init__(self, settings: ServiceSettings, store: WeightStore, registry: Registry) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.models = ModelSet(settings.model)
        self.policies = PolicyBook(settings.seed)
        self.metrics = ServiceMetrics()
        self.selections = SelectionBatch()
        self.install_lock = threading.RLock()
        self.items: AddedItems | None = None  # set by the app once Redis is known
        self.watcher = SnapshotWatcher(
            registry,
            self.install,
            self.served_version,
            interval_s=settings.poll_interval_s,
            on_failure=lambda model, _: self.metrics.snapshot_failures.labels(model).inc(),
        )

    def install(self, snapshot: Snapshot) -> ServedModel:
        """Precompute `snapshot` and swap it in (one assignment; the watcher and the added
        items' refresh are the writers, one at a time under `install_lock`). Libraries its
        load or its tower imported are then frozen with the rest (online.collector)."""
        with self.install_lock:
            if self.items is not None:  # added items, featurized by this snapshot's tower
                snapshot = self.items.extend(snapshot)
            served = self._install(snapshot)
        freeze_late_imports()
        return served

    def _install(self, snapshot: Snapshot) -> ServedModel:
        # A bare "thompson" explores at the scale the snapshot's users calibrate (not 1).
        scale = calibrated_thompson_scale(
            snapshot.items.features, snapshot.user_weights, lam=snapshot.lam,
            noise_std=snapshot.noise_std,
        )  # fmt: skip
        spec = self.settings.policy_for(snapshot.model)
        policy = make_policy(spec, seed=self.settings.seed, thompson_scale=scale)
        served = ServedModel.build(
            snapshot,
            policy,
            self.settings.rewards_for(snapshot.model),
            self.settings.cascade_config(),
            self.settings.seed,
            scale,
        )
        self.models = self.models.with_model(served)
        self.metrics.snapshot_version.labels(served.name).set(served.version)
        return served

    def served_version(self, model: str) -> int | None:
        """The version of `model` being served, if any."""
        served = self.models.models.get(model)
        return served.version if served is not None else None
