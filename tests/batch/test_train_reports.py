"""`velox train` says what it left out and what the gate did: events with a bad reward are
skipped and counted (issue 23, item 1), and a version is compared with the current one only
on the same holdout, or the output says why not (item 5)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch.datasets.synthetic import SyntheticSpec, load_synthetic
from batch.events_schema import EVENTS_SCHEMA
from batch.gate import Comparison, gate_outcome
from feature_store.registry import Registry
from tests.cli_support import run_velox
from tests.jobs.test_invalid_events import BAD_REWARDS
from tests.online.synthetic import synthetic_snapshot

N_EVENTS = 4000
SMALL = ["--model", "m", "--rank", "4", "--iterations", "4"]
EXTRA = {"dataset": "d", "evaluation": {"k": 10}, "events": 9, "users": 3, "items_with_events": 4}


def _train(tmp_path: Path, *args: str) -> tuple[str, bool]:
    """`velox train ARGS`: its output, and whether the most-popular check vetoed the version
    (that check is not what these tests are about; it exits 1 after the gate's verdict)."""
    done = run_velox(["train", *args, *SMALL], tmp_path, timeout_s=600)
    vetoed = done.returncode == 1 and "than recommending the most popular items" in done.stderr
    assert done.returncode == 0 or vetoed, done.stdout + done.stderr
    return " ".join(done.stdout.split()), vetoed


def _with_bad_rewards(home: Path, events: Path) -> None:
    """The synthetic dataset's events plus copies of 4 of them with the `BAD_REWARDS`."""
    files = load_synthetic(home / "datasets", SyntheticSpec(n_events=N_EVENTS, seed=42))
    table = pq.read_table(files.events).select(list(EVENTS_SCHEMA.names)).cast(EVENTS_SCHEMA)
    bad = table.slice(0, len(BAD_REWARDS))
    bad = bad.set_column(0, "event_id", pa.array([f"bad{n}" for n in range(bad.num_rows)]))
    bad = bad.set_column(3, "reward", pa.array(BAD_REWARDS, pa.float64()))
    pq.write_table(pa.concat_tables([table, bad.cast(table.schema)]), events)


@pytest.mark.slow
def test_train_reports_skipped_events_and_the_gate(tmp_path: Path) -> None:
    """Over a current v1 trained with the feedback log, `velox train --events` on events with
    4 bad rewards skips and counts them, says the gate could not compare (other events) and
    that v2 would drop the logged feedback, publishes v2 and leaves v1 current."""
    registry = Registry(str(tmp_path / "home" / "snapshots"))
    logged = {"dataset": "synthetic-9000+log", "events": 9000}
    registry.publish("m", replace(synthetic_snapshot(), extra=logged))
    events = tmp_path / "events.parquet"
    _with_bad_rewards(tmp_path / "home", events)
    text, vetoed = _train(tmp_path, "--events", str(events))
    assert "skipped 4 events whose reward is NaN, infinite or outside [-1e+06, 1e+06]" in text
    assert "gate: NOT compared with the current v1: the holdouts differ (dataset synthetic-" in text
    assert "events 9000 -> 4000" in text
    assert "so it would drop that feedback: it is not made current" in text
    assert vetoed or "published m v2 (not made current)" in text
    assert "not promoted (--no-promote)" not in text
    manifest = registry.manifest("m", 2)
    assert (manifest.extra["skipped_events"], manifest.extra["events"]) == (4, N_EVENTS)
    assert registry.current("m") == 1


def test_gate_outcome_in_words() -> None:
    """Each case of the gate has its own sentence; dropping the feedback log is called out."""
    passed = [Comparison("holdout_rmse", 1.0, 1.01, worse=False)]
    assert gate_outcome(3, EXTRA, EXTRA, passed, 0.02) == [
        "gate: passed against v3 on one holdout (holdout_rmse within 2.0%)"
    ]
    with_log = {**EXTRA, "dataset": "d+log", "events": 12}
    lines = gate_outcome(3, with_log, EXTRA, [], 0.02)
    assert lines[0] == (
        "gate: NOT compared with the current v3: the holdouts differ (dataset d+log -> d; "
        "events 12 -> 9), so their metrics cannot be compared"
    )
    assert lines[1].startswith("gate: the current v3 was trained with the drained feedback log")
    assert "it is not made current" in lines[1]
    assert gate_outcome(None, {}, EXTRA, [], 0.02) == [
        "gate: no current version to compare with (first version)"
    ]
    other_protocol = {**EXTRA, "evaluation": {"k": 20}}
    assert "(evaluation protocol)" in gate_outcome(3, other_protocol, EXTRA, [], 0.02)[0]
