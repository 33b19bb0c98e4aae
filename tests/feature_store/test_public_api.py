"""Pins the public names of feature_store: the contract batch/ and online/ code against."""

from __future__ import annotations

import inspect

import feature_store
from feature_store.errors import FeatureStoreError
from feature_store.registry import Registry
from velox.errors import InvalidInputError, NotFoundError, VeloxError

EXPORTED = {
    "FORMAT_VERSION", "ArrowFileSystemStorage", "FeatureStoreError", "InvalidAttributesError",
    "InvalidFactorsError", "InvalidModelNameError", "InvalidSnapshotDataError", "LocalStorage",
    "Manifest", "ModelNotFoundError", "NoCurrentVersionError", "NoRollbackTargetError",
    "Registry", "Snapshot", "SnapshotCorruptError", "SnapshotData", "SnapshotStorage",
    "VersionNotFoundError", "load_snapshot", "open_storage",
}  # fmt: skip


def test_exported_names_are_pinned() -> None:
    assert set(feature_store.__all__) == EXPORTED
    assert all(hasattr(feature_store, name) for name in EXPORTED)


def test_registry_signatures() -> None:
    signatures = {
        name: str(inspect.signature(getattr(Registry, name)))
        for name in ("models", "versions", "current", "manifest", "load", "publish", "promote",
                     "rollback", "gc", "next_version", "history")
    }  # fmt: skip
    assert signatures == {
        "models": "(self) -> 'list[str]'",
        "versions": "(self, model: 'str') -> 'list[int]'",
        "current": "(self, model: 'str') -> 'int | None'",
        "manifest": "(self, model: 'str', version: 'int') -> 'Manifest'",
        "load": "(self, model: 'str', version: 'int | None' = None, *, verify: 'bool' = True)"
        " -> 'Snapshot'",
        "publish": "(self, model: 'str', data: 'SnapshotData', *, promote: 'bool' = True, "
        "parent: 'int | None' = None) -> 'Manifest'",
        "promote": "(self, model: 'str', version: 'int') -> 'None'",
        "rollback": "(self, model: 'str') -> 'int'",
        "gc": "(self, model: 'str', *, older_than_s: 'float' = 3600.0) -> 'list[str]'",
        "next_version": "(self, model: 'str') -> 'int'",
        "history": "(self, model: 'str') -> 'list[int]'",
    }


def test_errors_carry_statuses_and_core_categories() -> None:
    statuses = {
        name: getattr(feature_store, name).status for name in EXPORTED if name.endswith("Error")
    }
    assert statuses == {
        "FeatureStoreError": 500, "SnapshotCorruptError": 500, "InvalidSnapshotDataError": 400,
        "InvalidFactorsError": 400, "InvalidAttributesError": 400, "InvalidModelNameError": 400,
        "ModelNotFoundError": 404, "VersionNotFoundError": 404, "NoCurrentVersionError": 404,
        "NoRollbackTargetError": 409,
    }  # fmt: skip
    for name in statuses:
        error = getattr(feature_store, name)
        assert issubclass(error, FeatureStoreError) and issubclass(error, VeloxError)
        assert issubclass(error, NotFoundError) == (error.status == 404)
        assert issubclass(error, InvalidInputError) == (error.status == 400)
