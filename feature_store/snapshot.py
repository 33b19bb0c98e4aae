"""`Snapshot`: one loaded model version, as the service holds it (spec: docs/snapshot_format.md).

Loading maps `items.arrow` and `users.arrow` into memory without copying (local roots) or
reads each file once (remote roots), verifies every sha256 against the manifest on the very
bytes it will serve, and checks shapes, dtypes and finiteness. Everything a request needs
(ids → rows, row norms, filter columns) is built here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from pyarrow import ipc
from safetensors.numpy import load as safetensors_load

from feature_store.arrow_tables import check_factors, read_factors
from feature_store.errors import (
    InvalidFactorsError,
    ModelNotFoundError,
    SnapshotCorruptError,
    VersionNotFoundError,
)
from feature_store.item_columns import to_item_columns
from feature_store.layout import ITEMS, MANIFEST, USERS, WEIGHTS, check_model_name, version_dir
from feature_store.manifest import Manifest
from feature_store.storage import SnapshotStorage, open_storage, sha256_hex
from velox.catalog import ItemMatrix
from velox.errors import NonFiniteError
from velox.filters.columns import ItemColumns

if TYPE_CHECKING:
    from velox.filters import FilterCache


@dataclass(frozen=True, eq=False)
class Snapshot:
    """A verified, loaded snapshot version: item features, batch user weights, the prior."""

    manifest: Manifest
    items: ItemMatrix
    item_ids: NDArray[np.object_]
    item_index: dict[str, int]
    columns: ItemColumns
    user_ids: NDArray[np.object_]
    user_index: dict[str, int]
    user_weights: NDArray[np.float32]
    user_counts: NDArray[np.int64]
    prior_mean: NDArray[np.float64]
    model_weights: dict[str, NDArray[Any]] | None

    @cached_property
    def filters(self) -> FilterCache:
        """Cached filter masks over `columns`, built on first use (batch jobs never filter)."""
        from velox.filters import FilterCache

        return FilterCache(self.columns)

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


def load_snapshot(root: str, model: str, version: int, *, verify: bool = True) -> Snapshot:
    """Load `<root>/<model>/v<version>`; `root` is a local path or a pyarrow filesystem URI."""
    return read_snapshot(open_storage(root), model, version, verify=verify)


def read_manifest(storage: SnapshotStorage, model: str, version: int) -> Manifest:
    """The manifest of one version; named errors for a missing model, version or manifest."""
    check_model_name(model)
    directory = f"{model}/{version_dir(version)}"
    if not storage.is_dir(directory):
        if not storage.is_dir(model):
            raise ModelNotFoundError(f"no model {model!r} in {storage.description}")
        raise VersionNotFoundError(f"model {model!r} has no version {version}")
    try:
        manifest = Manifest.from_json(storage.read_bytes(f"{directory}/{MANIFEST}"))
    except FileNotFoundError as error:
        raise SnapshotCorruptError(f"{model} v{version}: {MANIFEST} is missing") from error
    if manifest.model != model or manifest.version != version:
        raise SnapshotCorruptError(
            f"{directory}/{MANIFEST} describes {manifest.model!r} v{manifest.version}"
        )
    return manifest


def _read_file(storage: SnapshotStorage, manifest: Manifest, name: str, verify: bool) -> pa.Buffer:
    label = f"{manifest.model} v{manifest.version}: {name}"
    if name not in manifest.files:
        raise SnapshotCorruptError(f"{label} is not listed in the manifest")
    try:
        buffer = storage.read_buffer(f"{manifest.model}/{version_dir(manifest.version)}/{name}")
    except FileNotFoundError as error:
        raise SnapshotCorruptError(f"{label} is missing") from error
    if verify and sha256_hex(buffer) != manifest.files[name]:
        raise SnapshotCorruptError(f"{label} does not match its sha256 in the manifest")
    return buffer


def _read_batch(buffer: pa.Buffer, label: str) -> pa.RecordBatch:
    try:
        reader = ipc.open_file(pa.BufferReader(buffer))
        if reader.num_record_batches != 1:
            raise SnapshotCorruptError(
                f"{label} has {reader.num_record_batches} record batches, expected 1"
            )
        batch = reader.get_batch(0)
        batch.validate()
    except pa.ArrowException as error:
        raise SnapshotCorruptError(f"{label} is not a readable Arrow IPC file: {error}") from error
    return batch


def _index(ids: NDArray[np.object_]) -> dict[str, int]:
    return dict(zip(ids.tolist(), range(len(ids)), strict=True))


def read_snapshot(
    storage: SnapshotStorage, model: str, version: int, *, verify: bool = True
) -> Snapshot:
    """Load one version from `storage` (see `load_snapshot`)."""
    manifest = read_manifest(storage, model, version)
    unknown = set(manifest.files) - {ITEMS, USERS, WEIGHTS}
    if unknown:
        raise SnapshotCorruptError(f"{model} v{version}: unknown files {sorted(unknown)}")
    buffers = {name: _read_file(storage, manifest, name, verify) for name in manifest.files}
    dim = manifest.dim

    items = _read_batch(buffers[ITEMS], f"{model} v{version}: {ITEMS}")
    item_ids, features = read_factors(items, "item_id", "features", dim, "item")
    try:
        matrix = ItemMatrix.from_features(features)
    except NonFiniteError as error:
        raise InvalidFactorsError(
            f"{model} v{version}: item features contain NaN or infinity"
        ) from error
    attributes = items.select(items.schema.names[2:])
    columns = to_item_columns(item_ids, attributes)

    users = _read_batch(buffers[USERS], f"{model} v{version}: {USERS}")
    user_ids, user_weights = read_factors(users, "user_id", "w", dim, "user")
    check_factors(user_weights, "user weights", len(user_ids), dim)
    if users.schema.names[2:] != ["count"] or users.column(2).type != pa.int64():
        raise InvalidFactorsError(f"{model} v{version}: users.arrow must end with count int64")
    if users.column(2).null_count:
        raise InvalidFactorsError(f"{model} v{version}: user counts contain nulls")
    user_counts = users.column(2).to_numpy(zero_copy_only=True)

    prior_mean = np.array(manifest.prior_mean, dtype=np.float64)
    prior_mean.setflags(write=False)
    weights = None
    if WEIGHTS in buffers:
        try:
            weights = safetensors_load(buffers[WEIGHTS].to_pybytes())
        except (ValueError, OSError) as error:
            raise SnapshotCorruptError(
                f"{model} v{version}: unreadable {WEIGHTS}: {error}"
            ) from error
    return Snapshot(
        manifest=manifest,
        items=matrix,
        item_ids=item_ids,
        item_index=_index(item_ids),
        columns=columns,
        user_ids=user_ids,
        user_index=_index(user_ids),
        user_weights=user_weights,
        user_counts=user_counts,
        prior_mean=prior_mean,
        model_weights=weights,
    )
