"""`Registry`: the versions of every model under one snapshot root, and which one is current.

Layout and guarantees: docs/snapshot_format.md. A version only becomes current after it
has been loaded and verified, so a damaged snapshot never replaces the one being served.
"""

from __future__ import annotations

import time

from feature_store.errors import (
    InvalidSnapshotDataError,
    ModelNotFoundError,
    NoCurrentVersionError,
    VersionNotFoundError,
)
from feature_store.layout import (
    CURRENT,
    LOCK,
    MANIFEST,
    TMP_PREFIX,
    check_model_name,
    parse_version_dir,
    replacement_prefix,
    version_dir,
)
from feature_store.manifest import Manifest
from feature_store.pointer import CurrentPointer, first_pointer
from feature_store.publish import next_version, publish_snapshot
from feature_store.snapshot import Snapshot, read_snapshot
from feature_store.snapshot_data import SnapshotData
from feature_store.snapshot_files import read_manifest
from feature_store.storage import SnapshotStorage, open_storage


class Registry:
    """Snapshot versions under `root`: a local path, a `file://` URI or any pyarrow URI."""

    def __init__(self, root: str | SnapshotStorage) -> None:
        self.storage = open_storage(root) if isinstance(root, str) else root

    def models(self) -> list[str]:
        """Names of the models with at least one directory entry under the root."""
        names = self.storage.list_dir("")
        return [n for n in names if not n.startswith(".") and self.storage.is_dir(n)]

    def versions(self, model: str) -> list[int]:
        """Complete versions of `model`, ascending (empty for an unknown model)."""
        check_model_name(model)
        found = []
        for name in self.storage.list_dir(model):
            version = parse_version_dir(name)
            if version is not None and self.storage.is_file(f"{model}/{name}/{MANIFEST}"):
                found.append(version)
        return sorted(found)

    def _require_model(self, model: str) -> None:
        if not self.storage.is_dir(check_model_name(model)):
            raise ModelNotFoundError(f"no model {model!r} in {self.storage.description}")

    def _pointer(self, model: str) -> CurrentPointer | None:
        try:
            return CurrentPointer.from_json(self.storage.read_bytes(f"{model}/{CURRENT}"))
        except FileNotFoundError:
            return None

    def current(self, model: str) -> int | None:
        """The current version of `model`, or None if none was ever promoted."""
        pointer = self._pointer(check_model_name(model))
        return pointer.version if pointer else None

    def history(self, model: str) -> list[int]:
        """Versions that were current before the present one, oldest first (rollback pops)."""
        pointer = self._pointer(check_model_name(model))
        return list(pointer.history) if pointer else []

    def next_version(self, model: str) -> int:
        """The number the next publish of `model` will most likely get."""
        return next_version(self.storage, check_model_name(model))

    def manifest(self, model: str, version: int) -> Manifest:
        """The manifest of one version."""
        return read_manifest(self.storage, model, version)

    def load(self, model: str, version: int | None = None, *, verify: bool = True) -> Snapshot:
        """Load a version (None: the current one), verifying checksums unless told not to."""
        if version is None:
            version = self.current(model)
            if version is None:
                self._require_model(model)
                raise NoCurrentVersionError(f"model {model!r} has no current version")
        return read_snapshot(self.storage, model, version, verify=verify)

    def publish(
        self,
        model: str,
        data: SnapshotData,
        *,
        promote: bool = True,
        parent: int | None = None,
    ) -> Manifest:
        """Write `data` as a new version of `model`; make it current if `promote`."""
        check_model_name(model)
        if parent is not None:
            if isinstance(parent, bool) or not isinstance(parent, int) or parent < 1:
                raise InvalidSnapshotDataError(f"parent must be a version number, got {parent!r}")
            if not self.storage.is_file(f"{model}/{version_dir(parent)}/{MANIFEST}"):
                raise VersionNotFoundError(f"parent version {parent} of {model!r} does not exist")
        manifest = publish_snapshot(self.storage, model, data, parent=parent)
        if promote:
            self.promote(model, manifest.version)
        return manifest

    def promote(self, model: str, version: int) -> None:
        """Make `version` current, after loading and verifying it (a damaged one never is)."""
        read_snapshot(self.storage, model, version, verify=True)
        with self.storage.lock(f"{model}/{LOCK}"):
            pointer = self._pointer(model)
            if pointer is None:
                self._write_pointer(model, first_pointer(version))
            elif pointer.version != version:
                self._write_pointer(model, pointer.promoted(version))

    def rollback(self, model: str) -> int:
        """Go back to the version that was current before this one; returns it."""
        self._require_model(model)
        with self.storage.lock(f"{model}/{LOCK}"):
            pointer = self._pointer(model)
            if pointer is None:
                raise NoCurrentVersionError(f"model {model!r} has no current version")
            target = pointer.rolled_back()
            read_snapshot(self.storage, model, target.version, verify=True)
            self._write_pointer(model, target)
        return target.version

    def _write_pointer(self, model: str, pointer: CurrentPointer) -> None:
        self.storage.replace_file(f"{model}/{CURRENT}", pointer.to_json())

    def gc(self, model: str, *, older_than_s: float = 3600.0) -> list[str]:
        """Delete what crashed publishes left (untouched for `older_than_s`); their names.

        That is `.tmp-*` directories, `.CURRENT.tmp-*` files and, on filesystems without
        directory rename, version directories whose files were still moving (no manifest).
        Complete versions are never deleted.
        """
        check_model_name(model)
        cutoff = time.time() - older_than_s
        removed = []
        for name in self.storage.list_dir(model):
            path = f"{model}/{name}"
            incomplete = parse_version_dir(name) is not None and not self.storage.is_file(
                f"{path}/{MANIFEST}"
            )
            leftover = incomplete or name.startswith((TMP_PREFIX, replacement_prefix(CURRENT)))
            if not leftover or self.storage.mtime(path) >= cutoff:
                continue
            if self.storage.is_dir(path):
                self.storage.remove_tree(path)
            else:
                self.storage.remove_file(path)
            removed.append(name)
        return removed
