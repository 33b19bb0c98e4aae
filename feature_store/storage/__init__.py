"""Storage backends for snapshot roots, and `open_storage` that picks one from a path or URI."""

from __future__ import annotations

import pyarrow.fs as pafs

from feature_store.storage.arrow_fs import ArrowFileSystemStorage
from feature_store.storage.base import SnapshotStorage
from feature_store.storage.hashing import HashingWriter, sha256_hex
from feature_store.storage.local import LocalStorage

__all__ = [
    "ArrowFileSystemStorage",
    "HashingWriter",
    "LocalStorage",
    "SnapshotStorage",
    "open_storage",
    "sha256_hex",
]


def open_storage(root: str) -> SnapshotStorage:
    """A local path or `file://` URI → `LocalStorage`; any other pyarrow URI → generic."""
    if "://" not in root:
        return LocalStorage(root)
    filesystem, path = pafs.FileSystem.from_uri(root)
    if isinstance(filesystem, pafs.LocalFileSystem):
        return LocalStorage(path)
    return ArrowFileSystemStorage(filesystem, path, description=root)
