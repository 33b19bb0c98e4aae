"""The storage role: where snapshot files live. One abstract base, one module per backend.

Paths handed to a storage are relative to its root and use '/' separators. What each
backend guarantees (fsync, atomic rename, memory maps) is specified in
docs/snapshot_format.md.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager

import pyarrow as pa

from feature_store.storage.hashing import HashingWriter


class SnapshotStorage(ABC):
    """A root directory of snapshots on some filesystem."""

    @property
    @abstractmethod
    def description(self) -> str:
        """The root as a user would write it, for messages."""

    @abstractmethod
    def list_dir(self, path: str) -> list[str]:
        """Names of the entries of a directory; empty if it does not exist."""

    @abstractmethod
    def is_file(self, path: str) -> bool:
        """Whether `path` exists and is a regular file."""

    @abstractmethod
    def is_dir(self, path: str) -> bool:
        """Whether `path` exists and is a directory."""

    @abstractmethod
    def mtime(self, path: str) -> float:
        """Latest modification time of `path` or, for a directory, of anything directly in it."""

    @abstractmethod
    def read_bytes(self, path: str) -> bytes:
        """The whole file; `FileNotFoundError` if it does not exist."""

    @abstractmethod
    def read_buffer(self, path: str) -> pa.Buffer:
        """The whole file as an Arrow buffer: memory-mapped where the filesystem allows."""

    @abstractmethod
    def make_dir(self, path: str) -> None:
        """Create a directory and its parents (no error if it exists)."""

    @abstractmethod
    def open_write(self, path: str) -> AbstractContextManager[HashingWriter]:
        """Create a new file; on a clean exit its bytes are durable (fsynced where possible).

        The writer's `hexdigest()` is the sha256 of the file once the block has exited.
        """

    @abstractmethod
    def replace_file(self, path: str, data: bytes) -> None:
        """Atomically replace (or create) a small file; durable (directory included) on return.

        Readers see the old bytes or the new ones, never a mix.
        """

    @abstractmethod
    def rename_dir(self, source: str, target: str) -> bool:
        """Rename a directory of files; False (and nothing changed) if `target` exists.

        Where a filesystem cannot rename directories, the files move one by one and
        `manifest.json` moves last: a version is only listed once its manifest is there.
        """

    @abstractmethod
    def sync_dir(self, path: str) -> None:
        """Make the entries of a directory durable (fsync the directory where possible)."""

    @abstractmethod
    def remove_tree(self, path: str) -> None:
        """Delete a directory and everything in it."""

    @abstractmethod
    def remove_file(self, path: str) -> None:
        """Delete one file."""

    @abstractmethod
    def lock(self, path: str) -> AbstractContextManager[None]:
        """Hold an exclusive lock named by `path` (serializes pointer updates)."""
