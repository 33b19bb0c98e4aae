"""`SnapshotData`: what a training job hands to `Registry.publish`.

Spec of what it becomes on disk: docs/snapshot_format.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from feature_store.arrow_tables import build_items, build_users
from feature_store.errors import InvalidFactorsError, InvalidSnapshotDataError
from feature_store.tower.spec import TowerSpec


@dataclass(frozen=True)
class SnapshotTables:
    """The validated, ready-to-write form of a `SnapshotData`."""

    items: pa.RecordBatch
    users: pa.RecordBatch
    prior_mean: list[float]
    model_weights: dict[str, NDArray[Any]] | None


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(kw_only=True)
class SnapshotData:
    """Item features, batch user weights and the online head's prior: one model version.

    `item_attributes` rows are aligned with `item_ids` (columns of type int, float, bool,
    string or list<string>, e.g. title, year, price, genres). `model_weights` (for computed
    features) are written as safetensors; `tower_spec` (kind `deep`: the item tower's input
    spec, `feature_store.tower.spec`) as `tower.json`. Nothing here is written until
    `validate` passes.
    """

    kind: str
    item_ids: list[str] | NDArray[Any]
    item_features: NDArray[np.float32]
    item_attributes: pa.Table | None = None
    user_ids: list[str] | NDArray[Any]
    user_weights: NDArray[np.float32]
    user_counts: NDArray[np.int64]
    user_grams: NDArray[np.float32] | None = None
    """Per user, Σ x xᵀ over its training events (packed upper triangle, `users.arrow`'s
    `gram`): λI plus it is the precision of the user's batch head, which the online head
    continues (docs/snapshot_format.md). None: the online prior is λI around `w`."""
    prior_mean: NDArray[np.floating[Any]]
    lam: float
    noise_std: float
    metrics: dict[str, float] = field(default_factory=dict)
    training_cutoff: str | None = None
    model_weights: dict[str, NDArray[Any]] | None = None
    tower_spec: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise `InvalidFactorsError`, `InvalidAttributesError` or `InvalidSnapshotDataError`."""
        self.to_tables()

    def to_tables(self) -> SnapshotTables:
        """Validate everything and build the Arrow batches that publish writes."""
        self._check_scalars()
        items = build_items(self.item_ids, self.item_features, self.item_attributes)
        dim = int(self.item_features.shape[1])
        users = build_users(
            self.user_ids, self.user_weights, self.user_counts, dim, self.user_grams
        )
        self._check_tower(dim)
        return SnapshotTables(
            items=items,
            users=users,
            prior_mean=self._checked_prior_mean(dim),
            model_weights=self._checked_model_weights(),
        )

    def _check_tower(self, dim: int) -> None:
        if self.tower_spec is None:
            return
        spec = TowerSpec.from_json(self.tower_spec)  # SnapshotCorruptError if malformed
        if self.model_weights is None or spec.dim != dim:
            raise InvalidSnapshotDataError(
                f"a tower spec needs the tower's weights and features of its dimension "
                f"{spec.dim} (got {dim})"
            )

    def _check_scalars(self) -> None:
        if not isinstance(self.kind, str) or not self.kind:
            raise InvalidSnapshotDataError(f"kind must be a non-empty string, got {self.kind!r}")
        if not _finite_number(self.lam) or self.lam <= 0:
            raise InvalidSnapshotDataError(f"lambda must be finite and > 0, got {self.lam!r}")
        if not _finite_number(self.noise_std) or self.noise_std < 0:
            raise InvalidSnapshotDataError(
                f"noise_std must be finite and >= 0, got {self.noise_std!r}"
            )
        bad = [
            k for k, v in self.metrics.items() if not isinstance(k, str) or not _finite_number(v)
        ]
        if bad:
            raise InvalidSnapshotDataError(f"metrics must be finite numbers; bad: {bad}")
        if self.training_cutoff is not None and not isinstance(self.training_cutoff, str):
            raise InvalidSnapshotDataError("training_cutoff must be a string or None")
        try:
            json.dumps(self.extra, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise InvalidSnapshotDataError(f"extra must be plain finite JSON: {error}") from error

    def _checked_prior_mean(self, dim: int) -> list[float]:
        prior = np.asarray(self.prior_mean)
        if prior.shape != (dim,) or prior.dtype.kind not in "iuf":
            raise InvalidFactorsError(
                f"prior_mean must be {dim} numbers, got {prior.dtype} {prior.shape}"
            )
        if not np.all(np.isfinite(prior)):
            raise InvalidFactorsError("prior_mean contains NaN or infinity")
        return [float(x) for x in prior]

    def _checked_model_weights(self) -> dict[str, NDArray[Any]] | None:
        if self.model_weights is None:
            return None
        checked: dict[str, NDArray[Any]] = {}
        for name, tensor in self.model_weights.items():
            if not isinstance(name, str) or not isinstance(tensor, np.ndarray):
                raise InvalidFactorsError(f"model weight {name!r} must be a named numpy array")
            if tensor.dtype.kind not in "biuf":
                raise InvalidFactorsError(f"model weight {name!r} has dtype {tensor.dtype}")
            if tensor.dtype.kind == "f" and not np.all(np.isfinite(tensor)):
                raise InvalidFactorsError(f"model weight {name!r} contains NaN or infinity")
            checked[name] = np.ascontiguousarray(tensor)
        return checked
