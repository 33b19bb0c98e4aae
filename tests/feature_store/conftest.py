"""Registries on every storage backend: a local path, a `file://` URI, a generic pyarrow fs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from feature_store.registry import Registry
from feature_store.storage import ArrowFileSystemStorage, LocalStorage

BACKENDS = ("local-path", "file-uri", "arrow-fs")


def make_registry(backend: str, root: Path) -> Registry:
    """A registry over `root` through the named backend."""
    if backend == "local-path":
        return Registry(str(root))
    if backend == "file-uri":
        return Registry(root.as_uri())
    # A SubTreeFileSystem is a pyarrow filesystem that is not a LocalFileSystem, so the
    # generic (remote) backend runs for real against this disk.
    filesystem = pafs.SubTreeFileSystem(str(root), pafs.LocalFileSystem())
    return Registry(ArrowFileSystemStorage(filesystem, ""))


@pytest.fixture(params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    """An empty registry, once per backend."""
    return make_registry(str(request.param), tmp_path / "snapshots")


@pytest.fixture
def local_registry(tmp_path: Path) -> Registry:
    """An empty registry on a local path."""
    return Registry(str(tmp_path / "snapshots"))


@pytest.fixture
def root_of() -> Callable[[Registry], Path]:
    """The local directory behind a registry made by these fixtures."""

    def root(registry: Registry) -> Path:
        storage = registry.storage
        if isinstance(storage, LocalStorage):
            return storage.root
        assert isinstance(storage, ArrowFileSystemStorage)
        return Path(storage.filesystem.base_path)

    return root
