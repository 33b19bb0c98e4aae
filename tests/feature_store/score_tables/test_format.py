"""The score table format: publish, list, current, verification, resume, registry isolation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feature_store.registry import Registry
from feature_store.score_tables import (
    KEY_COLUMNS,
    InvalidScoreTableError,
    ScoreTableCorruptError,
    ScoreTableNotFoundError,
    TableManifest,
    current_table_version,
    list_table_versions,
    publish_staged_table,
    staged_parts,
    staged_table_versions,
    table_dir,
    verify_table,
    write_part,
)
from tests.feature_store.planted import planted_data
from tests.feature_store.score_tables.planted_table import (
    attribute_table,
    publish_planted_table,
    read_parts,
)

MODEL = "movies"


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """A registry with one planted snapshot (40 items, 15 users) made current."""
    registry = Registry(str(tmp_path / "snapshots"))
    registry.publish(MODEL, planted_data(seed=3))
    return registry


def test_publish_lists_verifies_and_points_current(registry: Registry) -> None:
    """A published table is listed, current, verified; rows follow the sort contract."""
    manifest = publish_planted_table(registry, MODEL, top_n=10)
    storage = registry.storage
    assert list_table_versions(storage, MODEL) == [1]
    assert current_table_version(storage, MODEL) == 1
    assert verify_table(storage, MODEL, 1) == manifest
    assert (manifest.users, manifest.items, manifest.rows) == (15, 40, 150)
    assert len(manifest.files) == 4  # 15 users, 4 per part
    table = read_parts(registry, MODEL, 1)
    assert table.column_names[:4] == list(KEY_COLUMNS)
    rows = table.to_pylist()
    keys = [(r["user_id"], -r["score"], r["item_id"]) for r in rows]
    assert keys == sorted(keys)
    assert all(
        r["rank"] == 1 + sum(1 for q in rows[:i] if q["user_id"] == r["user_id"])
        for i, r in enumerate(rows)
    )
    second = publish_planted_table(registry, MODEL, top_n=None)
    assert (second.table_version, second.rows, second.top_n) == (2, 600, None)
    assert current_table_version(storage, MODEL) == 2


def test_snapshot_registry_ignores_score_tables(registry: Registry) -> None:
    """`score_tables` under the model is no snapshot version and no gc leftover."""
    publish_planted_table(registry, MODEL, top_n=5)
    assert registry.versions(MODEL) == [1]
    assert registry.next_version(MODEL) == 2
    assert registry.gc(MODEL, older_than_s=-1.0) == []
    assert registry.models() == [MODEL]
    assert list_table_versions(registry.storage, MODEL) == [1]


def test_manifest_round_trips_and_refuses_damage(registry: Registry) -> None:
    """The manifest reads back equal; a wrong key, total or reserved column is refused."""
    manifest = publish_planted_table(registry, MODEL, top_n=3)
    assert TableManifest.from_json(manifest.to_json()) == manifest
    data = json.loads(manifest.to_json())
    for damage in (
        {"extra": 1},
        {"rows": manifest.rows + 1},
        {"weights": "guess"},
        {"columns": {**manifest.columns, "score": "double"}},
        {"files": {"part-1.parquet": {"sha256": "0" * 64, "rows": 3}}},
    ):
        with pytest.raises(ScoreTableCorruptError):
            TableManifest.from_dict({**data, **damage})


def test_bad_checksum_and_missing_part_are_refused(registry: Registry) -> None:
    """A flipped byte or a missing part makes verification fail with a named error."""
    publish_planted_table(registry, MODEL, top_n=5)
    root = Path(str(registry.storage.description)) / table_dir(MODEL, 1)
    part = root / "part-00001.parquet"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises(ScoreTableCorruptError, match="sha256"):
        verify_table(registry.storage, MODEL, 1)
    part.unlink()
    with pytest.raises(ScoreTableCorruptError, match="missing"):
        verify_table(registry.storage, MODEL, 1)
    with pytest.raises(ScoreTableNotFoundError):
        verify_table(registry.storage, MODEL, 7)


def test_a_resumed_build_publishes_what_was_staged(registry: Registry) -> None:
    """Parts written before a crash are found again and hashed; publish needs no `files`."""
    publish_planted_table(registry, MODEL, top_n=4)
    storage = registry.storage
    table = read_parts(registry, MODEL, 1)
    attributes = attribute_table(registry, MODEL, 1)
    written = {
        "part-00000.parquet": write_part(storage, MODEL, 2, 0, table.slice(0, 20)),
        "part-00001.parquet": write_part(storage, MODEL, 2, 1, table.slice(20)),
    }
    assert staged_table_versions(storage, MODEL) == [2]
    assert current_table_version(storage, MODEL) == 1  # nothing switched while staging
    assert staged_parts(storage, MODEL, 2) == written
    manifest = publish_staged_table(
        storage,
        MODEL,
        2,
        snapshot_version=1,
        top_n=4,
        users=15,
        items=40,
        weights="snapshot",
        attributes=attributes.schema,
    )
    assert manifest.files == written
    assert staged_table_versions(storage, MODEL) == []
    assert current_table_version(storage, MODEL) == 2
    with pytest.raises(InvalidScoreTableError):
        publish_staged_table(
            storage,
            MODEL,
            3,
            snapshot_version=1,
            top_n=4,
            users=15,
            items=40,
            weights="snapshot",
            attributes=attributes.schema,
        )


def test_corrupt_current_pointer_is_a_named_error(registry: Registry) -> None:
    """CURRENT holding anything but a version number raises `ScoreTableCorruptError`."""
    publish_planted_table(registry, MODEL, top_n=2)
    pointer = Path(str(registry.storage.description)) / MODEL / "score_tables" / "CURRENT"
    pointer.write_text("1; drop table x")
    with pytest.raises(ScoreTableCorruptError):
        current_table_version(registry.storage, MODEL)
