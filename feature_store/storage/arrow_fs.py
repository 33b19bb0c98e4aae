"""Snapshots on any pyarrow filesystem (S3, GCS, HDFS, ...): files are read into memory.

Object stores have no fsync and no directory rename (pyarrow moves single objects, by copy
and delete on S3). What still holds there, and why, is in docs/snapshot_format.md: a version
is only listed once its manifest exists (it is moved last), CURRENT is one object written
whole, and a version is verified before CURRENT names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import pyarrow as pa
import pyarrow.fs as pafs

from feature_store.layout import MANIFEST, replacement_prefix, temp_name
from feature_store.storage.base import SnapshotStorage
from feature_store.storage.hashing import HashingWriter


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
        """Latest modification time of `path` or of an entry directly in it.

        Object stores record no time for a directory (a key prefix), only for its files.
        """
        infos = [self.filesystem.get_file_info(self._path(path))]
        if infos[0].type == pafs.FileType.Directory:
            infos.extend(self.filesystem.get_file_info(pafs.FileSelector(self._path(path))))
        times = [info.mtime.timestamp() for info in infos if info.mtime is not None]
        return float(max(times, default=0.0))

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
            writer = HashingWriter(stream)
            try:
                yield writer
            finally:
                writer.finish()

    def replace_file(self, path: str, data: bytes) -> None:
        """Write a temp file and move it over `path` (one whole-object write on object stores)."""
        parent, _, name = path.rpartition("/")
        temp = temp_name(replacement_prefix(name))
        temp = f"{parent}/{temp}" if parent else temp
        with self.filesystem.open_output_stream(self._path(temp)) as stream:
            stream.write(data)
        self.filesystem.move(self._path(temp), self._path(path))

    def rename_dir(self, source: str, target: str) -> bool:
        """Move the files of `source` one by one, `manifest.json` last, unless `target` exists.

        pyarrow cannot move a directory on S3 (it moves single objects), so this works on every
        filesystem; the existence check and the moves are not one atomic step.
        """
        if self._type(target) != pafs.FileType.NotFound:
            return False
        self.make_dir(target)
        for name in sorted(self.list_dir(source), key=lambda entry: entry == MANIFEST):
            self.filesystem.move(self._path(f"{source}/{name}"), self._path(f"{target}/{name}"))
        self.remove_tree(source)
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
