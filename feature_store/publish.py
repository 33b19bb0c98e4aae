"""Atomic publish of one snapshot version (protocol: docs/snapshot_format.md).

Everything is written into `<model>/.tmp-<uuid>/`, hashed while it is written and fsynced;
then the directory is renamed to `v<N>`. The rename is the commit point: before it the
version does not exist, after it the version is complete. Two publishers racing for the same
N cannot both win the rename; the loser rewrites its manifest for N + 1 and tries again.
"""

from __future__ import annotations

import pyarrow as pa
from pyarrow import ipc
from safetensors.numpy import save as safetensors_save

from feature_store.ann_index import ANN_MIN_ITEMS, build_index, load_index, params_for
from feature_store.ann_tuning import tuned
from feature_store.errors import FeatureStoreError
from feature_store.layout import (
    INDEX,
    ITEMS,
    MANIFEST,
    TOWER_SPEC,
    USERS,
    WEIGHTS,
    parse_version_dir,
    temp_name,
    version_dir,
)
from feature_store.manifest import FORMAT_VERSION, Manifest
from feature_store.pointer import utc_now
from feature_store.snapshot_data import SnapshotData
from feature_store.storage import SnapshotStorage

_MAX_RENAME_ATTEMPTS = 1000


def next_version(storage: SnapshotStorage, model: str) -> int:
    """One more than the highest `v<N>` directory of the model (1 for a new model)."""
    versions = [parse_version_dir(name) for name in storage.list_dir(model)]
    return max((v for v in versions if v is not None), default=0) + 1


def _write_batch(storage: SnapshotStorage, path: str, batch: pa.RecordBatch) -> str:
    with (
        storage.open_write(path) as writer,
        ipc.new_file(pa.PythonFile(writer, mode="w"), batch.schema) as arrow_writer,
    ):
        arrow_writer.write_batch(batch)
    return writer.hexdigest()


def _write_bytes(storage: SnapshotStorage, path: str, data: bytes) -> str:
    with storage.open_write(path) as writer:
        writer.write(data)
    return writer.hexdigest()


def publish_snapshot(
    storage: SnapshotStorage,
    model: str,
    data: SnapshotData,
    *,
    parent: int | None,
    ann_min_items: int = ANN_MIN_ITEMS,
) -> Manifest:
    """Validate `data`, write it as the next version of `model` and return its manifest.

    A catalog of `ann_min_items` or more gets an inner-product ANN index (feature_store.ann_index).
    """
    tables = data.to_tables()  # every refusal happens here, before anything is written
    temp = f"{model}/{temp_name()}"
    storage.make_dir(temp)
    committed = False
    try:
        files = {
            ITEMS: _write_batch(storage, f"{temp}/{ITEMS}", tables.items),
            USERS: _write_batch(storage, f"{temp}/{USERS}", tables.users),
        }
        if tables.model_weights is not None:
            files[WEIGHTS] = _write_bytes(
                storage, f"{temp}/{WEIGHTS}", safetensors_save(tables.model_weights)
            )
        if data.tower_spec is not None:
            spec = data.tower_spec.encode()
            files[TOWER_SPEC] = _write_bytes(storage, f"{temp}/{TOWER_SPEC}", spec)
        extra = dict(data.extra)
        ann = params_for(data.item_features, min_items=ann_min_items)
        if ann is not None:
            index = build_index(data.item_features, ann)
            n_items, dim = data.item_features.shape
            ann, extra["ann_tuning"] = tuned(
                load_index(index, ann, n_items, dim, model),
                data.item_features,
                data.user_weights,
            )
            files[INDEX] = _write_bytes(storage, f"{temp}/{INDEX}", index)
            extra["ann_index"] = ann.to_dict()
        created_at = utc_now()
        for _ in range(_MAX_RENAME_ATTEMPTS):
            manifest = Manifest(
                format_version=FORMAT_VERSION,
                model=model,
                version=next_version(storage, model),
                dim=int(data.item_features.shape[1]),
                kind=data.kind,
                lam=float(data.lam),
                noise_std=float(data.noise_std),
                created_at=created_at,
                training_cutoff=data.training_cutoff,
                metrics={k: float(v) for k, v in data.metrics.items()},
                parent=parent,
                files=files,
                prior_mean=tables.prior_mean,
                extra=extra,
            )
            # replace_file also syncs `temp`, making the data files' entries durable too.
            storage.replace_file(f"{temp}/{MANIFEST}", manifest.to_json().encode())
            if storage.rename_dir(temp, f"{model}/{version_dir(manifest.version)}"):
                committed = True
                storage.sync_dir(model)
                storage.sync_dir("")  # the model's own entry, new on its first publish
                return manifest
        raise FeatureStoreError(
            f"could not claim a version number for {model!r} in {_MAX_RENAME_ATTEMPTS} attempts"
        )
    finally:
        if not committed:
            storage.remove_tree(temp)
