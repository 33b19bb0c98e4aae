"""`velox materialize` on planted snapshots with real Spark: every row against brute force."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from batch.materialize.command import build_and_load
from batch.materialize.job import MaterializeOptions, MaterializeReport, materialize
from feature_store.score_tables.publish import switch_current
from feature_store.score_tables.retention import drop_old_tables
from feature_store.storage import LocalStorage
from tests.batch.materialize.brute_force import (
    MODEL,
    assert_rows_match,
    expected_rows,
    publish,
    table_rows,
    tied_data,
)
from tests.feature_store.planted import planted_data
from velox.settings import VeloxSettings

pytestmark = pytest.mark.spark


def run(root: Path, spark: SparkSession, **options: object) -> MaterializeReport:
    """Materialize MODEL on the CPU in small parts (several per run)."""
    chosen = MaterializeOptions(model=MODEL, device="cpu", rows_per_part=40, **options)  # type: ignore[arg-type]
    return materialize(chosen, str(root), spark=spark)


def test_top_n_rows_are_the_score_contract_and_the_manifest_counts_them(
    tmp_path: Path, spark: SparkSession
) -> None:
    version = publish(tmp_path, planted_data(seed=1, n=40, m=15, d=6))
    report = run(tmp_path, spark, top_n=7)
    directory = tmp_path / MODEL / "score_tables" / "1"
    assert_rows_match(table_rows(directory), expected_rows(tmp_path, version, 7))
    manifest = json.loads((directory / "manifest.json").read_text())
    assert (manifest["table_version"], manifest["snapshot_version"]) == (1, version)
    assert (manifest["users"], manifest["items"], manifest["rows"]) == (15, 40, 15 * 7)
    assert (manifest["top_n"], manifest["weights"]) == (7, "snapshot")
    parts = sorted(p.name for p in directory.glob("part-*.parquet"))
    assert sorted(manifest["files"]) == parts and len(parts) == report.written_parts > 1
    for name, entry in manifest["files"].items():
        data = (directory / name).read_bytes()
        assert entry == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "rows": len(pq.read_table(directory / name)),
        }
    assert sorted(p.name for p in directory.iterdir()) == sorted([*parts, "manifest.json"])
    assert (tmp_path / MODEL / "score_tables" / "CURRENT").read_text().strip() == "1"


def test_parts_hold_disjoint_user_ranges_in_order_with_the_items_types(
    tmp_path: Path, spark: SparkSession
) -> None:
    publish(tmp_path, planted_data(seed=2, n=40, m=15, d=6))
    run(tmp_path, spark, top_n=5)
    directory = tmp_path / MODEL / "score_tables" / "1"
    parts = sorted(directory.glob("part-*"))
    users = [pq.read_table(part).column("user_id").to_pylist() for part in parts]
    flat = [u for part in users for u in part]
    assert flat == sorted(flat) and all(part for part in users)
    schema = pq.read_schema(directory / "part-00000.parquet")
    assert schema.names[:4] == ["user_id", "rank", "item_id", "score"]
    assert [str(t) for t in schema.types[:4]] == ["string", "int32", "string", "double"]
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["columns"] == {
        "title": "string",
        "year": "int64",
        "rating": "double",
        "price": "double",
        "genres": "list<item: string>",
        "is_new": "bool",
    }


def test_ties_are_ordered_by_item_id_in_top_n_and_all_items(
    tmp_path: Path, spark: SparkSession
) -> None:
    version = publish(tmp_path, tied_data())
    run(tmp_path, spark, top_n=6)
    assert_rows_match(
        table_rows(tmp_path / MODEL / "score_tables" / "1"), expected_rows(tmp_path, version, 6)
    )
    report = run(tmp_path, spark, top_n=None)
    directory = tmp_path / MODEL / "score_tables" / "2"
    assert_rows_match(table_rows(directory), expected_rows(tmp_path, version, None))
    manifest = report.manifest
    assert (manifest.top_n, manifest.rows) == (None, 9 * 30)


def test_a_file_of_users_selects_them_and_unknown_users_get_the_prior(
    tmp_path: Path, spark: SparkSession
) -> None:
    version = publish(tmp_path, planted_data(seed=4, n=40, m=15, d=6))
    names = ["user-3", "stranger", "user-11", "user-3", "", "user-0"]
    listed = tmp_path / "users.txt"
    listed.write_text("\n".join(names) + "\n")
    report = run(tmp_path, spark, top_n=4, users=str(listed))
    wanted = [name for name in names if name]
    assert_rows_match(
        table_rows(tmp_path / MODEL / "score_tables" / "1"),
        expected_rows(tmp_path, version, 4, wanted),
    )
    assert (report.manifest.users, report.manifest.rows) == (4, 16)


def test_keep_leaves_the_newest_versions_and_never_the_current_one(
    tmp_path: Path, spark: SparkSession
) -> None:
    publish(tmp_path, planted_data(seed=10, n=12, m=4, d=3))
    settings = VeloxSettings(home=tmp_path / "home", snapshot_root=str(tmp_path))
    for _ in range(3):
        options = MaterializeOptions(model=MODEL, device="cpu", top_n=2, keep=2)
        build_and_load(options, settings, spark=spark)
    tables = tmp_path / MODEL / "score_tables"
    assert sorted(p.name for p in tables.iterdir() if not p.name.startswith(".")) == [
        "2",
        "3",
        "CURRENT",
    ]
    storage = LocalStorage(tmp_path)
    switch_current(storage, MODEL, 2)  # a rollback, say: the current table is older
    assert drop_old_tables(storage, MODEL, keep=1) == []
    assert (tables / "2" / "manifest.json").is_file() and (tables / "3").is_dir()


def test_active_users_are_those_with_recent_events_in_the_drained_log(
    tmp_path: Path, spark: SparkSession
) -> None:
    version = publish(tmp_path, planted_data(seed=13, n=20, m=10, d=3))
    now = datetime.now(UTC)
    events = {  # user -> how long ago its last event was
        "user-1": timedelta(hours=2),
        "user-4": timedelta(days=1),
        "newcomer": timedelta(hours=5),
        "user-7": timedelta(days=30),
    }
    log = tmp_path / "events"
    for user, ago in events.items():
        day = log / f"date={(now - ago):%Y-%m-%d}"
        day.mkdir(parents=True, exist_ok=True)
        table = pa.table(
            {
                "user_id": [user],
                "item_id": ["item-13-0"],
                "reward": [1.0],
                "timestamp": pa.array([now - ago], pa.timestamp("us", tz="UTC")),
            }
        )
        pq.write_table(table, day / f"events-{user}.parquet")
    report = run(tmp_path, spark, top_n=3, users="active:7", events_root=log)
    active = ["user-1", "user-4", "newcomer"]
    assert_rows_match(
        table_rows(tmp_path / MODEL / "score_tables" / "1"),
        expected_rows(tmp_path, version, 3, active),
    )
    assert report.manifest.users == 3
