"""Reading, validating, indexing and splitting events in a real local Spark session."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as sf

from batch.datasets.files import DatasetWriter
from batch.datasets.reader import read_events
from batch.errors import EventsSchemaError
from batch.prepare import prepare_events
from batch.spark import session_exists
from batch.splits import TEST, random_holdout, time_holdout

pytestmark = pytest.mark.spark

DAY = 86_400_000_000


def _events(rows: list[tuple[str, str, str, float, int]]) -> pa.Table:
    event_id, user, item, reward, micros = zip(*rows, strict=True)
    return pa.table(
        {
            "event_id": list(event_id),
            "user_id": list(user),
            "item_id": list(item),
            "reward": list(reward),
            "timestamp": pa.array(list(micros), pa.timestamp("us", tz="UTC")),
        }
    )


PLANTED = _events(
    [(f"a{k:02d}", "alice", f"i{k % 4}", float(k), k * DAY) for k in range(10)]
    + [(f"b{k}", "bob", "i0", 1.0, 5 * DAY) for k in range(3)]  # ties in time: by event_id
    + [(f"c{k}", "carol", "i1", 2.0, k * DAY) for k in range(5)]
)


def _parquet(tmp_path: Path, table: pa.Table) -> str:
    with DatasetWriter(tmp_path / "d") as writer:
        writer.add_events(table)
    return str(tmp_path / "d" / "events")


def test_session_settings(spark: SparkSession) -> None:
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
    partitions = spark.conf.get("spark.sql.shuffle.partitions")
    assert partitions == str(spark.sparkContext.defaultParallelism)


def test_the_session_is_seen_from_other_threads(spark: SparkSession) -> None:
    # run_train stops only a session it started; a job thread must see the test's session
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(session_exists).result()


def test_parquet_events_are_indexed_by_frequency(spark: SparkSession, tmp_path: Path) -> None:
    prepared = prepare_events(read_events(spark, _parquet(tmp_path, PLANTED)))
    assert prepared.n_events == 18
    assert prepared.user_ids == ["alice", "carol", "bob"]  # 10, 5 and 3 events
    assert prepared.item_ids[:2] == ["i1", "i0"]  # 3 + 5 and 3 + 3 events
    assert prepared.cutoff == "1970-01-10T00:00:00+00:00"
    table = prepared.frame.toArrow()
    assert set(table.column_names) == {"u", "i", "r", "timestamp", "event_id"}
    assert table.column("u").type == pa.int32()


def test_a_single_parquet_file_without_optional_columns(
    spark: SparkSession, tmp_path: Path
) -> None:
    pq.write_table(PLANTED, tmp_path / "events.parquet")  # no prediction_id, no propensity
    frame = read_events(spark, str(tmp_path / "events.parquet"))
    assert frame.filter(sf.col("propensity").isNull()).count() == 18
    assert prepare_events(frame).n_events == 18


def test_csv_events_with_iso_timestamps(spark: SparkSession, tmp_path: Path) -> None:
    table = PLANTED.set_column(
        4, "timestamp", pa.array(["1970-01-02T00:00:00Z"] * PLANTED.num_rows)
    )
    pacsv.write_csv(table, tmp_path / "events.csv")
    prepared = prepare_events(read_events(spark, str(tmp_path / "events.csv")))
    assert prepared.n_events == 18
    assert prepared.cutoff == "1970-01-02T00:00:00+00:00"


def test_bad_events_are_refused(spark: SparkSession, tmp_path: Path) -> None:
    pacsv.write_csv(PLANTED.drop_columns(["reward"]), tmp_path / "no_reward.csv")
    with pytest.raises(EventsSchemaError, match="reward"):
        read_events(spark, str(tmp_path / "no_reward.csv"))
    bad = PLANTED.set_column(3, "reward", pa.array(["x"] * PLANTED.num_rows))
    pacsv.write_csv(bad, tmp_path / "bad_reward.csv")
    with pytest.raises(EventsSchemaError):
        prepare_events(read_events(spark, str(tmp_path / "bad_reward.csv")))


def test_time_holdout_takes_each_users_latest_events(spark: SparkSession, tmp_path: Path) -> None:
    prepared = prepare_events(read_events(spark, _parquet(tmp_path, PLANTED)))
    held = time_holdout(prepared.frame, 0.2, min_events=4).filter(sf.col(TEST))
    assert sorted(row["event_id"] for row in held.collect()) == ["a08", "a09", "c4"]
    everyone = time_holdout(prepared.frame, 0.5, min_events=2).filter(sf.col(TEST))
    # bob's three events share one time: the last by event_id is held out
    assert "b2" in {row["event_id"] for row in everyone.collect()}


def test_random_holdout_ignores_partitioning(spark: SparkSession) -> None:
    frame = spark.range(5_000).select(sf.col("id").cast("string").alias("event_id"))
    one = random_holdout(frame.repartition(1), 0.2, seed=42).filter(sf.col(TEST))
    three = random_holdout(frame.repartition(3), 0.2, seed=42).filter(sf.col(TEST))
    held = {row["event_id"] for row in one.collect()}
    assert held == {row["event_id"] for row in three.collect()}
    assert 900 < len(held) < 1_100
    other = random_holdout(frame, 0.2, seed=7).filter(sf.col(TEST))
    assert {row["event_id"] for row in other.collect()} != held
