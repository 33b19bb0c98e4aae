"""Snapshots of f(x; theta): format, atomic publish, registry, zero-copy loading.

The storage layout is specified in docs/snapshot_format.md.
"""

from feature_store.errors import (
    FeatureStoreError,
    InvalidAttributesError,
    InvalidFactorsError,
    InvalidModelNameError,
    InvalidSnapshotDataError,
    ModelNotFoundError,
    NoCurrentVersionError,
    NoRollbackTargetError,
    SnapshotCorruptError,
    VersionNotFoundError,
)
from feature_store.manifest import FORMAT_VERSION, Manifest
from feature_store.registry import Registry
from feature_store.snapshot import Snapshot, load_snapshot
from feature_store.snapshot_data import SnapshotData
from feature_store.storage import (
    ArrowFileSystemStorage,
    LocalStorage,
    SnapshotStorage,
    open_storage,
)

__all__ = [
    "FORMAT_VERSION",
    "ArrowFileSystemStorage",
    "FeatureStoreError",
    "InvalidAttributesError",
    "InvalidFactorsError",
    "InvalidModelNameError",
    "InvalidSnapshotDataError",
    "LocalStorage",
    "Manifest",
    "ModelNotFoundError",
    "NoCurrentVersionError",
    "NoRollbackTargetError",
    "Registry",
    "Snapshot",
    "SnapshotCorruptError",
    "SnapshotData",
    "SnapshotStorage",
    "VersionNotFoundError",
    "load_snapshot",
    "open_storage",
]
