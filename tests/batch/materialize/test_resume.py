"""A build that dies mid-job leaves CURRENT and the served table alone; a rerun resumes it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from batch.materialize.errors import MaterializeError
from batch.materialize.job import CRASH_HOOK, MaterializeOptions, materialize
from tests.batch.materialize.brute_force import (
    MODEL,
    assert_rows_match,
    expected_rows,
    publish,
    table_rows,
)
from tests.feature_store.planted import planted_data

pytestmark = pytest.mark.spark


def file_ids(directory: Path) -> dict[str, tuple[int, int]]:
    """Part name -> (inode, mtime in ns): equal only for the very same, untouched file."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in directory.glob("part-*")}


def test_a_crash_keeps_the_current_table_and_a_rerun_writes_only_missing_parts(
    tmp_path: Path, spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = publish(tmp_path, planted_data(seed=5, n=40, m=24, d=6))
    tables = tmp_path / MODEL / "score_tables"
    options = MaterializeOptions(model=MODEL, device="cpu", top_n=3, rows_per_part=12)
    materialize(options, str(tmp_path), spark=spark)
    served = {p.name: p.read_bytes() for p in (tables / "1").iterdir()}

    # Parts are scheduled in order on two cores: the last one dies after most others finished.
    bigger = MaterializeOptions(model=MODEL, device="cpu", top_n=8, rows_per_part=32)
    monkeypatch.setenv(CRASH_HOOK, "5")
    with pytest.raises(MaterializeError, match="rerun resumes"):
        materialize(bigger, str(tmp_path), spark=spark)
    assert (tables / "CURRENT").read_text().strip() == "1"
    assert {p.name: p.read_bytes() for p in (tables / "1").iterdir()} == served
    assert not (tables / "2").exists()
    finished = file_ids(tables / ".staging-2")
    assert 1 <= len(finished) < 6 and "part-00005.parquet" not in finished

    monkeypatch.delenv(CRASH_HOOK)
    seen: list[tuple[int, int]] = []
    report = materialize(bigger, str(tmp_path), spark=spark, progress=lambda *p: seen.append(p))
    assert (report.resumed_parts, report.written_parts) == (len(finished), 6 - len(finished))
    assert seen[0][0] >= len(finished) and seen[-1] == (6, 6)  # resumed parts count as done
    assert all(total == 6 for _, total in seen)
    published = file_ids(tables / "2")
    assert {name: published[name] for name in finished} == finished  # not rewritten
    assert_rows_match(table_rows(tables / "2"), expected_rows(tmp_path, version, 8))
    assert (tables / "CURRENT").read_text().strip() == "2"
    assert sorted(p.name for p in tables.iterdir() if p.name.startswith(".staging")) == []


def test_a_stale_staging_directory_of_another_plan_is_discarded(
    tmp_path: Path, spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = publish(tmp_path, planted_data(seed=6, n=30, m=10, d=4))
    monkeypatch.setenv(CRASH_HOOK, "1")
    options = MaterializeOptions(model=MODEL, device="cpu", top_n=4, rows_per_part=10)
    with pytest.raises(MaterializeError):
        materialize(options, str(tmp_path), spark=spark)
    monkeypatch.delenv(CRASH_HOOK)
    other = MaterializeOptions(model=MODEL, device="cpu", top_n=6, rows_per_part=10)
    report = materialize(other, str(tmp_path), spark=spark)
    assert report.resumed_parts == 0 and report.manifest.table_version == 1
    tables = tmp_path / MODEL / "score_tables"
    assert_rows_match(table_rows(tables / "1"), expected_rows(tmp_path, version, 6))
