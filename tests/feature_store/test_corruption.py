"""Damaged snapshots raise named errors and never become current."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from pyarrow import ipc

from feature_store.errors import InvalidFactorsError, SnapshotCorruptError
from feature_store.registry import Registry
from tests.feature_store.planted import planted_data


def _flip_byte(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset % len(raw)] ^= 0xFF
    path.write_bytes(bytes(raw))


def _two_versions(registry: Registry) -> None:
    registry.publish("m", planted_data(seed=1, weights=True))
    registry.publish("m", planted_data(seed=2, weights=True), promote=False)


@pytest.mark.parametrize("name", ["items.arrow", "users.arrow", "weights.safetensors"])
@pytest.mark.parametrize("where", [0, 1000, -9])
def test_a_flipped_byte_is_caught_and_promote_refuses_it(
    registry: Registry, root_of: Callable[[Registry], Path], name: str, where: int
) -> None:
    _two_versions(registry)
    _flip_byte(root_of(registry) / "m" / "v2" / name, where)

    with pytest.raises(SnapshotCorruptError, match=f"{name} does not match its sha256") as raised:
        registry.load("m", 2)
    assert raised.value.status == 500
    with pytest.raises(SnapshotCorruptError):
        registry.promote("m", 2)
    assert registry.current("m") == 1
    assert registry.load("m").version == 1


def test_missing_file_and_bad_manifest_are_named(
    registry: Registry, root_of: Callable[[Registry], Path]
) -> None:
    _two_versions(registry)
    version_dir = root_of(registry) / "m" / "v2"
    (version_dir / "users.arrow").unlink()
    with pytest.raises(SnapshotCorruptError, match=r"users\.arrow is missing"):
        registry.promote("m", 2)
    (version_dir / "manifest.json").write_text('{"format_version": 99}')
    with pytest.raises(SnapshotCorruptError, match="format_version 99"):
        registry.load("m", 2)
    (version_dir / "manifest.json").write_text("not json")
    with pytest.raises(SnapshotCorruptError, match="not valid JSON"):
        registry.manifest("m", 2)
    assert registry.current("m") == 1


def test_a_manifest_copied_into_another_version_is_refused(
    registry: Registry, root_of: Callable[[Registry], Path]
) -> None:
    _two_versions(registry)
    model_dir = root_of(registry) / "m"
    (model_dir / "v2" / "manifest.json").write_bytes(
        (model_dir / "v1" / "manifest.json").read_bytes()
    )
    with pytest.raises(SnapshotCorruptError, match="describes 'm' v1"):
        registry.load("m", 2)


def test_a_garbled_current_pointer_is_named(
    registry: Registry, root_of: Callable[[Registry], Path]
) -> None:
    _two_versions(registry)
    (root_of(registry) / "m" / "CURRENT").write_text('{"current": "two"}')
    with pytest.raises(SnapshotCorruptError, match="CURRENT"):
        registry.current("m")


def test_verify_false_skips_the_checksums(
    registry: Registry, root_of: Callable[[Registry], Path]
) -> None:
    _two_versions(registry)
    _flip_byte(root_of(registry) / "m" / "v2" / "weights.safetensors", -1)  # tensor data
    assert registry.load("m", 2, verify=False).model_weights is not None
    with pytest.raises(SnapshotCorruptError):
        registry.load("m", 2)


def test_nan_stored_with_a_matching_checksum_is_refused_at_load(tmp_path: Path) -> None:
    """A snapshot written by another tool is checked like one of ours: NaN is refused."""
    registry = Registry(str(tmp_path))
    data = planted_data(seed=3, attributes=False)
    registry.publish("m", data)
    version_dir = tmp_path / "m" / "v1"
    # Read into memory, not mapped: the file is rewritten below.
    with pa.OSFile(str(version_dir / "items.arrow")) as source:
        table = ipc.open_file(source).read_all()
    features = data.item_features.copy()
    features[5, 2] = np.nan
    table = table.set_column(
        1, "features", pa.FixedSizeListArray.from_arrays(pa.array(features.reshape(-1)), 6)
    )
    with (
        pa.OSFile(str(version_dir / "items.arrow"), "wb") as sink,
        ipc.new_file(sink, table.schema) as writer,
    ):
        writer.write_table(table)
    manifest = json.loads((version_dir / "manifest.json").read_text())
    digest = hashlib.sha256((version_dir / "items.arrow").read_bytes()).hexdigest()
    manifest["files"]["items.arrow"] = digest
    (version_dir / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(InvalidFactorsError, match="NaN or infinity"):
        registry.load("m", 1)


@pytest.mark.parametrize("name", ["items.arrow", "users.arrow", "weights.safetensors"])
def test_garbage_with_a_matching_checksum_is_named(tmp_path: Path, name: str) -> None:
    """Bytes that hash right but do not parse (another tool's bug) are corrupt, not a crash."""
    registry = Registry(str(tmp_path))
    registry.publish("m", planted_data(seed=1, weights=True))
    version_dir = tmp_path / "m" / "v1"
    garbage = b"ARROW1\x00\x00" + bytes(range(256)) * 4
    (version_dir / name).write_bytes(garbage)
    manifest = json.loads((version_dir / "manifest.json").read_text())
    manifest["files"][name] = hashlib.sha256(garbage).hexdigest()
    (version_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotCorruptError, match=re.escape(name)):
        registry.load("m", 1)


def test_duplicate_ids_written_by_another_tool_are_refused_at_load(tmp_path: Path) -> None:
    registry = Registry(str(tmp_path))
    registry.publish("m", planted_data(seed=4, attributes=False))
    path = tmp_path / "m" / "v1" / "users.arrow"
    with pa.OSFile(str(path)) as source:
        table = ipc.open_file(source).read_all()
    ids = table["user_id"].to_pylist()
    table = table.set_column(0, "user_id", pa.array([ids[1], *ids[1:]], pa.string()))
    with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    manifest = json.loads((path.parent / "manifest.json").read_text())
    manifest["files"]["users.arrow"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (path.parent / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidFactorsError, match="user ids contain 1 duplicates"):
        registry.load("m", 1)
