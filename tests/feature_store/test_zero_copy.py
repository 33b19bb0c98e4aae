"""Local snapshots are served straight from a memory map of items.arrow, never copied."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from feature_store.registry import Registry
from tests.feature_store.planted import planted_data


def test_features_are_a_read_only_view_of_the_mapped_file(tmp_path: Path) -> None:
    data = planted_data(seed=1, n=300, d=16)
    registry = Registry(str(tmp_path))
    registry.publish("m", data)
    snapshot = registry.load("m")
    features = snapshot.items.features

    assert not features.flags.owndata
    assert not features.flags.writeable
    assert features.flags.c_contiguous

    # Rewrite the first feature value inside the file: a mapped array sees the new bytes at
    # once; a copy would not. (Snapshots are immutable; this only proves the mapping.)
    path = tmp_path / "m" / "v1" / "items.arrow"
    raw = path.read_bytes()
    offset = raw.find(data.item_features[0].tobytes())
    assert offset > 0 and raw.count(data.item_features[0].tobytes()) == 1
    planted = np.float32(12345.5)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, planted.tobytes(), offset)
    finally:
        os.close(fd)
    assert features[0, 0] == planted
    np.testing.assert_array_equal(features[1:], data.item_features[1:])


def test_user_weights_and_numeric_attributes_are_views_too(tmp_path: Path) -> None:
    registry = Registry(str(tmp_path))
    registry.publish("m", planted_data(seed=2))
    snapshot = registry.load("m")
    assert not snapshot.user_weights.flags.owndata
    assert not snapshot.user_counts.flags.owndata
    year = snapshot.columns.data["year"]
    assert isinstance(year, np.ndarray)
    assert not year.flags.owndata  # no nulls: zero copy
