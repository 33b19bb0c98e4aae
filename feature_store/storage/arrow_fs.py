"""Snapshots on any pyarrow filesystem (S3, GCS, HDFS, ...): files are read into memory.

Object stores have no fsync and, on S3 and GCS, no atomic directory rename (pyarrow copies
and deletes). What still holds there, and why, is in docs/snapshot_format.md: a version is
only listed once its manifest exists, CURRENT is one object written whole, and a version is
verified before CURRENT names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import pyarrow as pa
import pyarrow.fs as pafs

from feature_store.layout import temp_name
from feature_store.storage.base import HashingWriter, SnapshotStorage


class ArrowFileSystemStorage(SnapshotStorage):
    """A snapshot root on a `pyarrow.fs.FileSystem`, at `base` (a path on that filesystem)."""

    def __init__(self, filesystem: pafs.FileSystem, base: str, description: str = "") -> None:
        self.filesystem = filesystem
        self.base = base.rstrip("/")
        self._description = description or f"{filesystem.type_name}:{self.base}"

    @property
    def description(self) -> str:
        """The root as given (the URI)."""
        return self._description

    def _path(self, path: str) -> str:
        return "/".join(part for part in (self.base, path) if part)

    def _type(self, path: str) -> pafs.FileType:
        return self.filesystem.get_file_info(self._path(path)).type

    def list_dir(self, path: str) -> list[str]:
        """Names of the entries of a directory; empty if it does not exist."""
        if self._type(path) != pafs.FileType.Directory:
            return []
        infos = self.filesystem.get_file_info(pafs.FileSelector(self._path(path)))
        return sorted(str(info.base_name) for info in infos)

    def is_file(self, path: str) -> bool:
        """Whether `path` is a file."""
        return bool(self._type(path) == pafs.FileType.File)

    def is_dir(self, path: str) -> bool:
        """Whether `path` is a directory."""
        return bool(self._type(path) == pafs.FileType.Directory)

    def mtime(self, path: str) -> float:
        """Last modification time (0.0 where the filesystem does not record one)."""
        info = self.filesystem.get_file_info(self._path(path))
        return float(info.mtime.timestamp()) if info.mtime is not None else 0.0

    def read_bytes(self, path: str) -> bytes:
        """The whole file."""
        return bytes(self.read_buffer(path))

    def read_buffer(self, path: str) -> pa.Buffer:
        """The whole file, read into memory in one request."""
        if not self.is_file(path):
            raise FileNotFoundError(f"no such file: {self._path(path)}")
        with self.filesystem.open_input_file(self._path(path)) as file:
            return file.read_buffer()

    def make_dir(self, path: str) -> None:
        """Create a directory and its parents."""
        self.filesystem.create_dir(self._path(path), recursive=True)

    @contextmanager
    def open_write(self, path: str) -> Iterator[HashingWriter]:
        """Create a file; it is complete (durable, on object stores) once the stream closes."""
        if self._type(path) != pafs.FileType.NotFound:
            raise FileExistsError(f"file exists: {self._path(path)}")
        with self.filesystem.open_output_stream(self._path(path)) as stream:
            yield HashingWriter(stream)

    def replace_file(self, path: str, data: bytes) -> None:
        """Write a temp file and move it over `path` (one whole-object write on object stores)."""
        parent, _, name = path.rpartition("/")
        temp = f"{parent}/{temp_name(f'.{name}.tmp-')}" if parent else temp_name(f".{name}.tmp-")
        with self.filesystem.open_output_stream(self._path(temp)) as stream:
            stream.write(data)
        self.filesystem.move(self._path(temp), self._path(path))

    def rename_dir(self, source: str, target: str) -> bool:
        """Move a directory unless `target` exists (checked first: not atomic on object stores)."""
        if self._type(target) != pafs.FileType.NotFound:
            return False
        self.filesystem.move(self._path(source), self._path(target))
        return True

    def sync_dir(self, path: str) -> None:
        """Nothing to do: pyarrow filesystems expose no directory fsync."""

    def remove_tree(self, path: str) -> None:
        """Delete a directory tree."""
        self.filesystem.delete_dir(self._path(path))

    def remove_file(self, path: str) -> None:
        """Delete one file."""
        self.filesystem.delete_file(self._path(path))

    def lock(self, path: str) -> AbstractContextManager[None]:
        """No cross-process lock exists on these filesystems: pointer updates are last-wins."""
        return nullcontext()
