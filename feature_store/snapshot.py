"""`Snapshot`: one loaded model version, as the service holds it (spec: docs/snapshot_format.md).

Loading maps `items.arrow` and `users.arrow` into memory without copying (local roots) or
reads each file once (remote roots), verifies every sha256 against the manifest on the very
bytes it will serve, and checks shapes, dtypes and finiteness. Everything a request needs
(ids → rows, row norms, filter columns) is built here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from safetensors import SafetensorError
from safetensors.numpy import load as safetensors_load

from feature_store.ann_index import AnnIndex, AnnParams, load_index
from feature_store.arrow_tables import (
    GRAM,
    check_factors,
    read_factors,
    read_grams,
    read_ids,
    row_index,
)
from feature_store.errors import InvalidFactorsError, SnapshotCorruptError
from feature_store.item_columns import to_item_columns
from feature_store.layout import TOWER_SPEC, WEIGHTS
from feature_store.manifest import Manifest
from feature_store.snapshot_files import SnapshotFiles, open_snapshot_files
from feature_store.storage import SnapshotStorage, open_storage
from feature_store.tower.spec import TowerSpec
from velox.catalog import ItemMatrix
from velox.errors import NonFiniteError
from velox.filters import FilterCache, ItemColumns
from velox.packed import unpack_upper
from velox.posterior import UserPosterior


@dataclass(frozen=True, eq=False)
class Snapshot:
    """A verified, loaded snapshot version: item features, batch user weights, the prior."""

    manifest: Manifest
    items: ItemMatrix
    item_ids: NDArray[np.object_]
    item_index: dict[str, int]
    columns: ItemColumns
    filters: FilterCache
    user_ids: NDArray[np.object_]
    user_index: dict[str, int]
    user_weights: NDArray[np.float32]
    user_counts: NDArray[np.int64]
    prior_mean: NDArray[np.float64]
    model_weights: dict[str, NDArray[Any]] | None
    ann: AnnIndex | None = None
    tower_spec: TowerSpec | None = None
    user_grams: NDArray[np.float32] | None = None
    """Per user row, Σ x xᵀ of its batch head (packed upper triangle), if the snapshot has it."""

    @property
    def model(self) -> str:
        """The model name."""
        return self.manifest.model

    @property
    def version(self) -> int:
        """The version number."""
        return self.manifest.version

    @property
    def dim(self) -> int:
        """Feature dimension d."""
        return self.manifest.dim

    @property
    def lam(self) -> float:
        """Prior precision λ of the online ridge head."""
        return self.manifest.lam

    @property
    def noise_std(self) -> float:
        """Residual standard deviation sigma of rewards around the score."""
        return self.manifest.noise_std

    def w0_for(self, user_id: str) -> NDArray[np.float64]:
        """The prior mean of a user: its batch-trained w if known, else the population prior.

        The population prior is shared and read-only; copy it before changing it.
        """
        row = self.user_index.get(user_id)
        if row is None:
            return self.prior_mean
        known: NDArray[np.float64] = self.user_weights[row].astype(np.float64)
        return known

    def precision_for(self, user_id: str) -> NDArray[np.float64] | None:
        """λI + the user's Gram matrix: the precision of its batch head, the online prior's
        (None for a user not in `users.arrow` or a snapshot without Gram matrices)."""
        row = self.user_index.get(user_id)
        if row is None or self.user_grams is None:
            return None
        precision = unpack_upper(self.user_grams[row], self.dim)
        precision[np.diag_indices(self.dim)] += self.lam
        return precision

    def prior_for(self, user_id: str) -> UserPosterior:
        """The user's online prior: its batch head's posterior, mean `w0_for` and precision
        `precision_for` (λI without Gram matrices; the population prior for an unknown user).
        The service and the offline policy evaluation both start a user here."""
        w0, precision = self.w0_for(user_id), self.precision_for(user_id)
        if precision is None:
            return UserPosterior.prior(w0, self.lam, self.noise_std)
        return UserPosterior.from_precision(w0, precision, self.lam, self.noise_std)


def load_snapshot(root: str, model: str, version: int, *, verify: bool = True) -> Snapshot:
    """Load `<root>/<model>/v<version>`; `root` is a local path or a pyarrow filesystem URI."""
    return read_snapshot(open_storage(root), model, version, verify=verify)


def read_snapshot(
    storage: SnapshotStorage, model: str, version: int, *, verify: bool = True
) -> Snapshot:
    """Load one version from `storage` (see `load_snapshot`)."""
    return build_snapshot(open_snapshot_files(storage, model, version, verify=verify))


def build_snapshot(files: SnapshotFiles) -> Snapshot:
    """Check the opened files and build everything a request needs from them, once."""
    manifest, items, users = files.manifest, files.items, files.users
    label, dim = f"{manifest.model} v{manifest.version}", manifest.dim

    item_ids = read_ids(items, "item_id", "item")
    try:
        matrix = ItemMatrix.from_features(read_factors(items, "features", dim, "item"))
    except NonFiniteError as error:
        raise InvalidFactorsError(f"{label}: item features contain NaN or infinity") from error
    columns = to_item_columns(item_ids, items.select(items.schema.names[2:]))

    user_ids = read_ids(users, "user_id", "user")
    user_weights = read_factors(users, "w", dim, "user")
    check_factors(user_weights, "user weights", len(user_ids), dim)
    counts = users.column(2) if users.num_columns in (3, 4) else None
    if (
        users.schema.names[2:] not in (["count"], ["count", GRAM])
        or counts is None
        or (counts.type != pa.int64())
    ):
        raise InvalidFactorsError(
            f"{label}: users.arrow must have a count int64 column after w, then optionally {GRAM}"
        )
    user_counts = counts.to_numpy(zero_copy_only=False)
    if counts.null_count or (len(user_counts) and user_counts.min() < 0):
        raise InvalidFactorsError(f"{label}: user counts must be integers >= 0")

    prior_mean = np.array(manifest.prior_mean, dtype=np.float64)
    prior_mean.setflags(write=False)
    weights = None
    if files.weights is not None:
        try:
            weights = safetensors_load(files.weights.to_pybytes())
        except SafetensorError as error:
            raise SnapshotCorruptError(f"{label}: unreadable {WEIGHTS}: {error}") from error
    tower = None
    if files.tower_spec is not None:
        tower = TowerSpec.from_json(files.tower_spec.to_pybytes())
        if weights is None or tower.dim != dim:
            raise SnapshotCorruptError(f"{label}: {TOWER_SPEC} needs {WEIGHTS} and dim {tower.dim}")
    return Snapshot(
        ann=_ann_index(files, matrix.n, label),
        manifest=manifest,
        items=matrix,
        item_ids=item_ids,
        item_index=row_index(item_ids, "item"),
        columns=columns,
        filters=FilterCache(columns),
        user_ids=user_ids,
        user_index=row_index(user_ids, "user"),
        user_weights=user_weights,
        user_counts=user_counts,
        prior_mean=prior_mean,
        model_weights=weights,
        tower_spec=tower,
        user_grams=read_grams(users, dim),
    )


def _ann_index(files: SnapshotFiles, n_items: int, label: str) -> AnnIndex | None:
    """The catalog's ANN index, if the snapshot has one; refused unless it matches the items."""
    described = files.manifest.extra.get("ann_index")
    if files.index is None and described is None:
        return None
    if files.index is None or described is None:
        raise SnapshotCorruptError(f"{label}: an ANN index file needs its manifest entry and back")
    params = AnnParams.from_dict(described, label)
    return load_index(files.index, params, n_items, files.manifest.dim, label)
