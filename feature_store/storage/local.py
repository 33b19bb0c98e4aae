"""Snapshots on a local disk: fsync everywhere, atomic renames, memory-mapped reads."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

from feature_store.layout import replacement_prefix, temp_name
from feature_store.storage.base import SnapshotStorage
from feature_store.storage.hashing import HashingWriter


class LocalStorage(SnapshotStorage):
    """A snapshot root that is a directory on this machine."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def description(self) -> str:
        """The root directory."""
        return str(self.root)

    def _path(self, path: str) -> Path:
        return self.root / path if path else self.root

    def list_dir(self, path: str) -> list[str]:
        """Names of the entries of a directory; empty if it does not exist."""
        try:
            return sorted(os.listdir(self._path(path)))
        except FileNotFoundError:
            return []

    def is_file(self, path: str) -> bool:
        """Whether `path` is a regular file."""
        return self._path(path).is_file()

    def is_dir(self, path: str) -> bool:
        """Whether `path` is a directory."""
        return self._path(path).is_dir()

    def mtime(self, path: str) -> float:
        """Latest modification time of `path` or of an entry directly in it."""
        full = self._path(path)
        times = [full.stat().st_mtime]
        if full.is_dir():
            times.extend(entry.stat().st_mtime for entry in full.iterdir())
        return max(times)

    def read_bytes(self, path: str) -> bytes:
        """The whole file."""
        return self._path(path).read_bytes()

    def read_buffer(self, path: str) -> pa.Buffer:
        """A read-only memory map of the file: nothing is copied, pages load on first touch."""
        full = self._path(path)
        if not full.is_file():
            raise FileNotFoundError(errno.ENOENT, "no such file", str(full))
        return pa.memory_map(str(full), "r").read_buffer()

    def make_dir(self, path: str) -> None:
        """Create a directory and its parents."""
        self._path(path).mkdir(parents=True, exist_ok=True)

    @contextmanager
    def open_write(self, path: str) -> Iterator[HashingWriter]:
        """Create a new file (never overwriting one) and fsync it when the write ends."""
        with open(self._path(path), "xb") as file:
            writer = HashingWriter(file)
            try:
                yield writer
                file.flush()
                os.fsync(file.fileno())  # overlaps with the last chunks' hashing
            finally:
                writer.finish()

    def replace_file(self, path: str, data: bytes) -> None:
        """Write a temp file next to `path`, fsync it, rename it over `path`, fsync the dir."""
        target = self._path(path)
        temp = target.with_name(temp_name(replacement_prefix(target.name)))
        try:
            with open(temp, "xb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
        self.sync_dir(str(target.parent.relative_to(self.root)))

    def rename_dir(self, source: str, target: str) -> bool:
        """rename(2): atomic; refused by the kernel when `target` is a non-empty directory."""
        try:
            os.rename(self._path(source), self._path(target))
        except OSError as error:
            if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
                return False
            raise
        return True

    def sync_dir(self, path: str) -> None:
        """fsync a directory so that renames and new entries in it survive a power loss."""
        fd = os.open(self._path(path), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def remove_tree(self, path: str) -> None:
        """Delete a directory tree."""
        shutil.rmtree(self._path(path))

    def remove_file(self, path: str) -> None:
        """Delete one file."""
        self._path(path).unlink()

    @contextmanager
    def lock(self, path: str) -> Iterator[None]:
        """An exclusive `flock` on the file `path` (created if needed)."""
        fd = os.open(self._path(path), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
