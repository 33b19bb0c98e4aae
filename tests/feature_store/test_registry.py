"""Versions, current, promote, rollback and gc, on every storage backend."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from feature_store.errors import (
    ModelNotFoundError,
    NoCurrentVersionError,
    NoRollbackTargetError,
    VersionNotFoundError,
)
from feature_store.registry import Registry
from tests.feature_store.planted import planted_data


def test_an_empty_root_has_no_models(registry: Registry) -> None:
    assert registry.models() == []
    assert registry.versions("m") == []
    assert registry.current("m") is None
    assert registry.history("m") == []
    assert registry.next_version("m") == 1
    with pytest.raises(ModelNotFoundError) as raised:
        registry.load("m")
    assert raised.value.status == 404
    with pytest.raises(ModelNotFoundError):
        registry.manifest("m", 1)
    with pytest.raises(ModelNotFoundError):
        registry.rollback("m")


def test_publish_numbers_versions_and_promotes_by_default(registry: Registry) -> None:
    assert registry.publish("m", planted_data(seed=1)).version == 1
    assert registry.publish("m", planted_data(seed=2), promote=False).version == 2
    assert registry.publish("other", planted_data(seed=3)).version == 1
    assert registry.models() == ["m", "other"]
    assert registry.versions("m") == [1, 2]
    assert registry.current("m") == 1
    assert registry.load("m").item_ids[0] == "item-1-0"
    assert registry.load("m", 2).item_ids[0] == "item-2-0"
    assert registry.next_version("m") == 3
    with pytest.raises(VersionNotFoundError) as raised:
        registry.load("m", 3)
    assert raised.value.status == 404


def test_unpromoted_model_has_no_current_version(registry: Registry) -> None:
    registry.publish("m", planted_data(seed=1), promote=False)
    assert registry.current("m") is None
    with pytest.raises(NoCurrentVersionError):
        registry.load("m")
    with pytest.raises(NoCurrentVersionError):
        registry.rollback("m")


def test_promote_and_rollback_walk_the_history(registry: Registry) -> None:
    for seed in (1, 2, 3):
        registry.publish("m", planted_data(seed=seed), promote=False)
    registry.promote("m", 1)
    registry.promote("m", 3)
    registry.promote("m", 3)  # already current: the history does not grow
    registry.promote("m", 2)
    assert (registry.current("m"), registry.history("m")) == (2, [1, 3])

    assert registry.rollback("m") == 3
    assert registry.load("m").version == 3
    assert registry.rollback("m") == 1
    assert (registry.current("m"), registry.history("m")) == (1, [])
    with pytest.raises(NoRollbackTargetError) as raised:
        registry.rollback("m")
    assert raised.value.status == 409
    assert registry.current("m") == 1
    with pytest.raises(VersionNotFoundError):
        registry.promote("m", 9)
    assert registry.current("m") == 1


def test_gc_removes_only_stale_temporaries(
    registry: Registry, root_of: Callable[[Registry], Path]
) -> None:
    registry.publish("m", planted_data(seed=1))
    model_dir = root_of(registry) / "m"
    stale, fresh = model_dir / ".tmp-crashed", model_dir / ".tmp-in-progress"
    for directory in (stale, fresh):
        directory.mkdir()
        (directory / "items.arrow").write_bytes(b"partial")
    stale_pointer = model_dir / ".CURRENT.tmp-crashed"
    stale_pointer.write_bytes(b"{")
    half_moved = model_dir / "v2"  # files still moving in, no manifest yet
    half_moved.mkdir()
    (half_moved / "items.arrow").write_bytes(b"moved")
    two_hours_ago = time.time() - 7200
    for path in (
        stale,
        stale / "items.arrow",
        stale_pointer,
        half_moved,
        half_moved / "items.arrow",
    ):
        os.utime(path, (two_hours_ago, two_hours_ago))

    assert registry.versions("m") == [1]
    assert registry.models() == ["m"]
    assert registry.next_version("m") == 3
    assert sorted(registry.gc("m")) == [".CURRENT.tmp-crashed", ".tmp-crashed", "v2"]
    assert not stale.exists() and not stale_pointer.exists() and fresh.exists()
    assert not half_moved.exists()
    assert registry.gc("m", older_than_s=0) == [".tmp-in-progress"]
    assert registry.versions("m") == [1]
    assert registry.load("m").version == 1
