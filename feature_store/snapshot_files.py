"""Open the files of one snapshot version: manifest, checksums, Arrow batches. No copies.

This is the zero-copy part of a load (spec: docs/snapshot_format.md): on a local root each
file is memory-mapped and its Arrow batch points into the map; `Snapshot` builds the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from pyarrow import ipc

from feature_store.errors import ModelNotFoundError, SnapshotCorruptError, VersionNotFoundError
from feature_store.layout import (
    INDEX,
    ITEMS,
    MANIFEST,
    TOWER_SPEC,
    USERS,
    WEIGHTS,
    check_model_name,
    version_dir,
)
from feature_store.manifest import Manifest
from feature_store.storage import SnapshotStorage, sha256_hex


@dataclass(frozen=True)
class SnapshotFiles:
    """The opened files of a version: its manifest and its Arrow batches (views, no copies)."""

    manifest: Manifest
    items: pa.RecordBatch
    users: pa.RecordBatch
    weights: pa.Buffer | None
    index: pa.Buffer | None = None
    tower_spec: pa.Buffer | None = None


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
    try:
        buffer = storage.read_buffer(f"{manifest.model}/{version_dir(manifest.version)}/{name}")
    except FileNotFoundError as error:
        raise SnapshotCorruptError(f"{label} is missing") from error
    # Hash the very bytes that will be served (the map itself), not a second read of the file.
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


def open_snapshot_files(
    storage: SnapshotStorage, model: str, version: int, *, verify: bool = True
) -> SnapshotFiles:
    """Read the manifest, map (or read) every file, verify its sha256, open its Arrow batch."""
    manifest = read_manifest(storage, model, version)
    label = f"{model} v{version}"
    names = set(manifest.files)
    if not {ITEMS, USERS} <= names <= {ITEMS, USERS, WEIGHTS, INDEX, TOWER_SPEC}:
        raise SnapshotCorruptError(f"{label}: the manifest lists files {sorted(names)}")
    buffers = {name: _read_file(storage, manifest, name, verify) for name in sorted(names)}
    return SnapshotFiles(
        manifest=manifest,
        items=_read_batch(buffers[ITEMS], f"{label}: {ITEMS}"),
        users=_read_batch(buffers[USERS], f"{label}: {USERS}"),
        weights=buffers.get(WEIGHTS),
        index=buffers.get(INDEX),
        tower_spec=buffers.get(TOWER_SPEC),
    )
