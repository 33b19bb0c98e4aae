"""The drain moves the feedback log to Parquet exactly once, and trims only what is durable."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.dataset as ds
import pytest
import redis

from batch.drain import EVENTS, LOCK_FILE, STAGING_DIR, Drain, DrainBusyError
from batch.events_schema import EVENTS_SCHEMA
from feature_store.log_cutoff import LOG_START, LogCutoff, LogId
from online.redis_keys import LOG_PARTITIONS, events_key, partition_of
from tests.jobs.crash_drain import POINTS
from tests.jobs.feedback_log import drained_event_ids, log_events, planted_events


def stream_lengths(client: redis.Redis, model: str = "m") -> int:
    """Entries left in all partitions of `model`'s log."""
    return sum(int(client.xlen(EVENTS.key(model, p))) for p in range(EVENTS.partitions))


def test_events_family_is_the_service_log() -> None:
    assert EVENTS.partitions == LOG_PARTITIONS
    for partition in (0, 7, LOG_PARTITIONS - 1):
        assert EVENTS.key("movies.v2", partition) == events_key("movies.v2", partition)


def test_drain_moves_every_event_once_and_trims(redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    events = planted_events(300)
    ids = log_events(client, "m", events)
    report = Drain(client, "m", tmp_path, batch_entries=120).run()

    assert report.entries == 300
    assert len(report.batches) == 3
    dataset = ds.dataset(str(tmp_path), format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert sorted(table.column("event_id").to_pylist()) == sorted(e.event_id for e in events)
    assert table.schema.remove(table.schema.get_field_index("date")).equals(EVENTS_SCHEMA)
    by_id = {row["event_id"]: row for row in table.to_pylist()}
    for event in events:
        row = by_id[event.event_id]
        assert (row["user_id"], row["item_id"], row["reward"]) == (
            event.user,
            event.item,
            event.reward,
        )
        day = row["timestamp"].strftime("%Y-%m-%d")
        assert row["date"] == day
    assert sorted({row["date"] for row in by_id.values()}) == [
        "2024-11-23",
        "2024-11-24",
        "2024-11-25",
    ]
    last = {}
    for event, log_id in zip(events, ids, strict=True):
        last[partition_of(event.user)] = LogId.parse(log_id)
    assert report.cutoff == LogCutoff.of([last.get(p, LOG_START) for p in range(LOG_PARTITIONS)])
    assert stream_lengths(client) == 0
    assert not any((tmp_path / STAGING_DIR).iterdir())


def test_a_second_drain_takes_only_new_events(redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    log_events(client, "m", planted_events(50))
    first = Drain(client, "m", tmp_path).run()
    log_events(client, "m", planted_events(30, start=50))
    second = Drain(client, "m", tmp_path).run()
    third = Drain(client, "m", tmp_path).run()

    assert (first.entries, second.entries, third.entries) == (50, 30, 0)
    assert Counter(drained_event_ids(str(tmp_path))) == Counter(f"e{n}" for n in range(80))
    assert third.cutoff == second.cutoff == Drain(client, "m", tmp_path).positions()


def test_trimming_is_held_back_to_keep_after(redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    ids = log_events(client, "m", planted_events(40, users=1))  # one user: one partition
    partition = partition_of("u0")
    keep = LogCutoff.start(LOG_PARTITIONS)
    keep = LogCutoff.of(
        [LogId.parse(ids[9]) if p == partition else q for p, q in enumerate(keep.positions)]
    )
    report = Drain(client, "m", tmp_path).run(keep_after=keep)

    assert report.entries == 40
    left = redis.Redis.from_url(redis_url, decode_responses=True).xrange(EVENTS.key("m", partition))
    assert [entry_id for entry_id, _ in left] == ids[10:]  # type: ignore[union-attr]
    again = Drain(client, "m", tmp_path).run()  # nothing new; now trims everything drained
    assert again.entries == 0
    assert stream_lengths(client) == 0
    assert sorted(drained_event_ids(str(tmp_path))) == sorted(f"e{n}" for n in range(40))


def test_one_drain_at_a_time(redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    with open(tmp_path / LOCK_FILE, "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(DrainBusyError):
            Drain(client, "m", tmp_path).run()


def crash(redis_url: str, root: Path, point: str, nth: int) -> None:
    """Run the drain in a child that SIGKILLs itself at `point` (the nth time)."""
    command = [
        sys.executable,
        "-m",
        "tests.jobs.crash_drain",
        redis_url,
        str(root),
        point,
        str(nth),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == -9, done.stderr


@pytest.mark.parametrize("point", POINTS)
def test_killed_drains_lose_and_duplicate_nothing(
    redis_url: str, tmp_path: Path, point: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    log_events(client, "m", planted_events(150))
    crash(redis_url, tmp_path, point, nth=2)  # dies in the second batch (40 entries each)
    log_events(client, "m", planted_events(60, start=150))  # the service keeps logging
    crash(redis_url, tmp_path, point, nth=1)  # and the restarted drain dies again
    Drain(client, "m", tmp_path, batch_entries=40).run()

    assert Counter(drained_event_ids(str(tmp_path))) == Counter(f"e{n}" for n in range(210))
    assert stream_lengths(client) == 0
    assert not any((tmp_path / STAGING_DIR).iterdir())


def test_decision_log_drains_in_its_schema(redis_url: str, tmp_path: Path) -> None:
    from batch.decision_log import DECISIONS_SCHEMA
    from batch.drain import DECISIONS
    from online.redis_keys import decisions_key

    client = redis.Redis.from_url(redis_url)
    assert DECISIONS.key("m", 9) == decisions_key("m", 9)
    for n in range(20):
        fields = {
            "prediction_id": f"p{n}", "user_id": f"u{n % 3}", "version": "2",
            "policy": "thompson", "timestamp": str(1_732_320_000_000_000 + n),
            "items": '["i1", "i2"]', "propensities": f"[0.5, {n / 100}]",
        }  # fmt: skip
        if n % 2:  # entries written before `candidates` was logged lack it
            fields["candidates"] = str(100 + n)
        client.xadd(DECISIONS.key("m", partition_of(f"u{n % 3}")), fields)  # type: ignore[arg-type]
    report = Drain(client, "m", tmp_path, DECISIONS).run()

    table = ds.dataset(str(tmp_path), format="parquet", partitioning="hive").to_table()
    assert report.entries == 20
    assert table.drop_columns(["date"]).schema.equals(DECISIONS_SCHEMA)
    rows = sorted(table.to_pylist(), key=lambda row: int(row["prediction_id"][1:]))
    assert [row["propensities"][1] for row in rows] == [n / 100 for n in range(20)]
    assert rows[3]["items"] == ["i1", "i2"] and rows[3]["version"] == 2
    assert [row["candidates"] for row in rows[:4]] == [None, 101, None, 103]
