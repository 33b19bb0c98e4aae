"""`velox evaluate-policy --policy SPEC` reads Velox's own drained decision and feedback logs,
gives the same estimates as the same decisions given as a joined Parquet log, says what it
left out and shows progress (issue 23, item 6)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from batch.decision_log import DECISIONS_SCHEMA
from batch.events_schema import EVENTS_SCHEMA
from feature_store.registry import Registry
from tests.cli_support import run_velox
from tests.jobs.test_evaluate_policy import _uniform_slate_log, snapshot_root  # noqa: F401

WHEN = datetime(2026, 3, 1, tzinfo=UTC)


def _as_velox_logs(joined: pa.Table, home: Path) -> None:
    """Write the joined per-slot rows as the drain writes them: one decision per answer (plus
    one answer that got no reward), one feedback event per rewarded slot."""
    rows = joined.to_pylist()
    answers: dict[str, dict[str, object]] = {}
    for row in rows:
        answer = answers.setdefault(
            row["prediction_id"],
            {"prediction_id": row["prediction_id"], "user_id": row["user_id"], "version": 1,
             "policy": "uniform", "candidates": 30, "source": "exact", "timestamp": WHEN,
             "items": [], "propensities": []},
        )  # fmt: skip
        answer["items"].append(row["item_id"])  # type: ignore[attr-defined]
        answer["propensities"].append(row["propensity"])  # type: ignore[attr-defined]
    unrewarded = {**next(iter(answers.values())), "prediction_id": "never-rewarded"}
    decisions = pa.Table.from_pylist([*answers.values(), unrewarded], schema=DECISIONS_SCHEMA)
    events = pa.Table.from_pylist(
        [
            {"event_id": f"e{n}", "user_id": row["user_id"], "item_id": row["item_id"],
             "reward": row["reward"], "timestamp": WHEN, "prediction_id": row["prediction_id"],
             "propensity": row["propensity"]}
            for n, row in enumerate(rows)
        ],
        schema=EVENTS_SCHEMA,
    )  # fmt: skip
    for family, table in (("decisions", decisions), ("events", events)):
        folder = home / family / "default" / "date=2026-03-01"
        folder.mkdir(parents=True)
        pq.write_table(table, folder / f"{family}-1.parquet")


def test_evaluate_policy_reads_the_drained_logs(
    snapshot_root: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Same estimates as the joined Parquet log; the unrewarded answer is left out and said
    so; --missing-reward 0 counts it; progress reaches every row."""
    snapshot = Registry(snapshot_root).load("default")
    joined_path = tmp_path / "joined.parquet"
    _uniform_slate_log(snapshot, joined_path, predictions=150, seed=3)
    _as_velox_logs(pq.read_table(joined_path), tmp_path / "home")
    env = {"VELOX_SNAPSHOT_ROOT": snapshot_root}
    args = ["evaluate-policy", "--policy", "egreedy:0.2", "--json", "--n-boot", "50"]
    drained = run_velox(args, tmp_path, env=env)
    assert drained.returncode == 0, drained.stderr
    given = run_velox([*args, "--logs", str(joined_path)], tmp_path, env=env)
    assert given.returncode == 0, given.stderr
    from_drained, from_given = json.loads(drained.stdout), json.loads(given.stdout)
    assert from_drained["estimates"] == from_given["estimates"]
    assert (from_drained["answers"], from_drained["answers_left_out"]) == (151, 1)
    assert "left out 1 of 151 answers" in drained.stderr
    assert "evaluating egreedy:0.2: 300/300 rows" in drained.stderr
    counted = run_velox([*args, "--missing-reward", "0"], tmp_path, env=env)
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout)["rows"] == 302


def test_evaluate_policy_without_drained_logs_says_how_to_get_them(tmp_path: Path) -> None:
    """No drained decisions yet: one line that names `velox retrain`, exit 1."""
    done = run_velox(["evaluate-policy", "--policy", "greedy"], tmp_path)
    assert done.returncode == 1
    assert "no drained decisions at" in done.stderr and "velox retrain" in done.stderr
