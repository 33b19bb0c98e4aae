"""`velox evaluate-policy`: a planted decision log over a published snapshot, then bad logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feature_store.registry import Registry
from feature_store.snapshot import Snapshot
from feature_store.snapshot_data import SnapshotData
from jobs.evaluate_policy import evaluate, read_decision_log, target_columns
from velox.errors import InvalidInputError, NotFoundError
from velox.policies import make_policy

N_ITEMS, N_USERS, DIM, EPSILON = 30, 12, 3, 0.2


@pytest.fixture(scope="module")
def snapshot_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A registry with one current version of model `default`: planted features and users."""
    rng = np.random.default_rng(0)
    root = str(tmp_path_factory.mktemp("snapshots"))
    data = SnapshotData(
        kind="mf",
        item_ids=[f"i{k}" for k in range(N_ITEMS)],
        item_features=rng.normal(size=(N_ITEMS, DIM)).astype(np.float32),
        user_ids=[f"u{k}" for k in range(N_USERS)],
        user_weights=rng.normal(size=(N_USERS, DIM)).astype(np.float32),
        user_counts=np.full(N_USERS, 10, dtype=np.int64),
        prior_mean=np.zeros(DIM),
        lam=1.0,
        noise_std=0.5,
    )
    Registry(root).publish("default", data)
    return root


def _like(snapshot: Snapshot) -> np.ndarray:
    """The hidden like-probabilities (users x items), a clipped function of the true scores."""
    scores = snapshot.user_weights.astype(np.float64) @ snapshot.items.features.T.astype(np.float64)
    return np.clip(0.5 + 0.2 * scores, 0.05, 0.95)


def _uniform_slate_log(snapshot: Snapshot, path: Path, predictions: int, seed: int) -> float:
    """Log uniform slates of 2 with Bernoulli rewards; return the target's true per-row value."""
    rng = np.random.default_rng(seed)
    like = _like(snapshot)
    rows: dict[str, list[object]] = {k: [] for k in
                                     ("prediction_id", "user_id", "item_id", "slot", "propensity",
                                      "reward", "policy")}  # fmt: skip
    value = 0.0
    for p in range(predictions):
        user = int(rng.integers(N_USERS))
        slate = rng.choice(N_ITEMS, 2, replace=False)
        means = snapshot.items.features.astype(np.float64) @ snapshot.user_weights[user]
        for slot, item in enumerate(slate.tolist()):
            eligible = np.ones(N_ITEMS, dtype=bool)
            eligible[slate[:slot]] = False
            pi = np.where(eligible, EPSILON / eligible.sum(), 0.0)
            pi[np.argmax(np.where(eligible, means, -np.inf))] += 1.0 - EPSILON
            value += float(pi @ like[user])
            row = (f"p{p}", f"u{user}", f"i{item}", slot, 1.0 / (N_ITEMS - slot),
                   float(rng.random() < like[user, item]), "uniform")  # fmt: skip
            for key, cell in zip(rows, row, strict=True):
                rows[key].append(cell)
    pq.write_table(pa.table(rows), path)
    return value / (2 * predictions)


def test_estimates_recover_the_target_value_of_a_planted_log(
    snapshot_root: str, tmp_path: Path
) -> None:
    snapshot = Registry(snapshot_root).load("default")
    path = tmp_path / "log.parquet"
    truth = _uniform_slate_log(snapshot, path, predictions=4000, seed=1)
    log = read_decision_log(path)
    policy = make_policy(f"egreedy:{EPSILON}")
    target = target_columns(log, snapshot, policy)
    assert np.all((target.target_probability > 0) & (target.target_probability <= 1))
    estimates = evaluate(log, snapshot, f"egreedy:{EPSILON}", seed=5)
    for name in ("ips", "snips", "dr"):
        assert estimates[name].value == pytest.approx(truth, rel=0.05), name
        assert estimates[name].covers(truth), name
        assert estimates[name].n == 8000


def test_the_command_prints_json_and_a_table(snapshot_root: str, tmp_path: Path) -> None:
    snapshot = Registry(snapshot_root).load("default")
    path = tmp_path / "log.parquet"
    _uniform_slate_log(snapshot, path, predictions=300, seed=2)
    env = {**os.environ, "VELOX_SNAPSHOT_ROOT": snapshot_root, "VELOX_HOME": str(tmp_path)}
    base = [sys.executable, "-c", "from velox.cli import main; main()", "evaluate-policy",
            "--logs", str(path), "--policy", "thompson", "--n-boot", "200"]  # fmt: skip
    done = subprocess.run([*base, "--json"], check=False, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["version"] == 1 and report["rows"] == 600 and report["predictions"] == 300
    assert set(report["estimates"]) == {"ips", "snips", "dr"}
    assert report["estimates"]["ips"]["ci_low"] <= report["estimates"]["ips"]["value"]
    table = subprocess.run(base, check=False, capture_output=True, text=True, env=env)
    assert table.returncode == 0 and "SNIPS" in table.stdout and "ESS" in table.stdout
    bad = subprocess.run(
        [*base[:5], str(path), "--policy", "nonsense"],
        check=False, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert bad.returncode == 1 and "unknown policy spec" in bad.stderr


def _write(path: Path, **overrides: list[object]) -> Path:
    columns: dict[str, list[object]] = {
        "prediction_id": ["a", "a", "b"],
        "user_id": ["u1", "u1", "u2"],
        "item_id": ["i1", "i2", "i3"],
        "slot": [0, 1, 0],
        "propensity": [0.5, 0.5, 0.25],
        "reward": [1.0, 0.0, 1.0],
    }
    columns.update(overrides)
    pq.write_table(pa.table({k: v for k, v in columns.items() if v != ["<drop>"]}), path)
    return path


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"reward": ["<drop>"]}, "lacks the column"),
        ({"reward": [1.0, None, 0.0]}, "nulls"),
        ({"slot": [0, 0, 0]}, "repeats"),
        ({"slot": [0, 2, 0]}, "every slot"),
        ({"propensity": [0.5, 0.0, 0.25]}, "propensity"),
        ({"slot": ["0", "1", "0"]}, "must be integer"),
    ],
)
def test_bad_logs_are_refused_with_a_clear_message(
    snapshot_root: str, tmp_path: Path, overrides: dict[str, list[object]], message: str
) -> None:
    snapshot = Registry(snapshot_root).load("default")
    with pytest.raises(InvalidInputError, match=message):
        log = read_decision_log(_write(tmp_path / "bad.parquet", **overrides))
        evaluate(log, snapshot, "greedy", n_boot=10)


def test_unknown_items_and_unreadable_files(snapshot_root: str, tmp_path: Path) -> None:
    snapshot = Registry(snapshot_root).load("default")
    log = read_decision_log(_write(tmp_path / "x.parquet", item_id=["i1", "nope", "i3"]))
    with pytest.raises(NotFoundError, match="not in snapshot"):
        evaluate(log, snapshot, "greedy", n_boot=10)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(InvalidInputError, match="cannot read"):
        read_decision_log(tmp_path / "junk.parquet")
