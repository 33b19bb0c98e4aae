"""A bad reward already in a drained log never breaks training: it is skipped, counted and
reported, and `velox events check | drop-invalid` find and remove it (issue 23, item 1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from batch.events_schema import EVENTS_SCHEMA
from tests.cli_support import run_velox

GOOD_USERS, GOOD_ITEMS = 30, 20
BAD_REWARDS = [1e50, float("nan"), float("inf"), -2e6]


def events_table(rewards: list[float], start: int) -> pa.Table:
    """Events in the events schema, one a minute from `start`, over 30 users and 20 items."""
    begin = datetime(2026, 1, 1, tzinfo=UTC)
    n = len(rewards)
    return pa.table(
        {
            "event_id": [f"e{start + k}" for k in range(n)],
            "user_id": [f"u{(start + k) % GOOD_USERS}" for k in range(n)],
            "item_id": [f"i{(start + k) * 7 % GOOD_ITEMS}" for k in range(n)],
            "reward": rewards,
            "timestamp": [begin + timedelta(minutes=start + k) for k in range(n)],
            "prediction_id": [None] * n,
            "propensity": [None] * n,
        },
        schema=EVENTS_SCHEMA,
    )


def _plant_log(root: Path) -> None:
    """Two drained files as the drain lays them out; the second holds the 4 bad rewards."""
    good = [float(k % 5 + 1) for k in range(40)]
    pq.write_table(events_table(good, 0), root / "date=2026-01-01" / "events-1.parquet")
    mixed = [3.0, *BAD_REWARDS, 4.0]
    pq.write_table(events_table(mixed, 40), root / "date=2026-01-02" / "events-2.parquet")


def test_events_check_and_drop_invalid(tmp_path: Path) -> None:
    """check counts the 4 bad rewards of 46 and changes nothing; drop-invalid removes exactly
    them, keeps them aside under _dropped/, and a second check finds none."""
    root = tmp_path / "home" / "events" / "shop"
    for day in ("date=2026-01-01", "date=2026-01-02"):
        (root / day).mkdir(parents=True)
    _plant_log(root)
    checked = run_velox(["events", "check", "--model", "shop"], tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "date=2026-01-02/events-2.parquet: 4 of 6 events invalid" in checked.stdout
    assert "4 of 46 events" in checked.stdout
    assert pq.read_table(root / "date=2026-01-02" / "events-2.parquet").num_rows == 6
    dropped = run_velox(["events", "drop-invalid", "--model", "shop"], tmp_path)
    assert dropped.returncode == 0, dropped.stderr
    assert "dropped 4 events" in dropped.stdout
    kept = pq.read_table(root / "date=2026-01-02" / "events-2.parquet", partitioning=None)
    assert kept.column("reward").to_pylist() == [3.0, 4.0]
    aside = pq.read_table(root / "_dropped" / "date=2026-01-02" / "events-2.parquet")
    assert aside.column("event_id").to_pylist() == ["e41", "e42", "e43", "e44"]
    again = run_velox(["events", "check", "--events-root", str(root)], tmp_path)
    assert "0 of 42 events" in again.stdout


def test_events_check_without_a_log_says_so(tmp_path: Path) -> None:
    """No drained log: one error line, exit 1."""
    done = run_velox(["events", "check", "--model", "none"], tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: no drained feedback log at ")
