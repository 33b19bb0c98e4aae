"""The gate re-scores the current snapshot on a new run's holdout (issue 23, item 5): a planted
snapshot on planted rows gives hand-computed metrics, and `velox retrain` over a current version
that is better on the same rows (the planted truth of a synthetic dataset) is not promoted."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from batch.datasets.synthetic import SyntheticSpec, generate_synthetic
from batch.errors import GateRejectedError
from batch.evaluate_current import load_current, versus_current
from batch.gate import check_gate, gate_outcome, versus_comparisons
from feature_store.registry import Registry
from feature_store.snapshot_data import SnapshotData
from tests.cli_support import run_velox
from tests.support.redis_server import RedisServer

MODEL = "gate-rescore"  # its own name in the session's Redis
EXTRA = {"dataset": "d", "evaluation": {"k": 2}, "events": 9, "users": 3, "items_with_events": 4}


def _planted(registry: Registry, **extra: object) -> int:
    """Current v1: items a, b, c = (1, 0), (0, 1), (1, 1); users x, y = (2, 0), (0, 3); prior
    (0.5, 0.5)."""
    data = SnapshotData(
        kind="mf",
        item_ids=["a", "b", "c"],
        item_features=np.array([[1, 0], [0, 1], [1, 1]], np.float32),
        user_ids=["x", "y"],
        user_weights=np.array([[2, 0], [0, 3]], np.float32),
        user_counts=np.array([1, 1], np.int64),
        prior_mean=np.array([0.5, 0.5]),
        lam=1.0,
        noise_std=1.0,
        training_cutoff="0-0",
        extra={**EXTRA, **extra},
    )
    return registry.publish("m", data).version


def _rows(copies: int) -> pa.Table:
    """New run's ids: users x, y, z (z unknown to v1; `copies` times over), items a, b, c, d (d
    unknown). v1 saw events up to t = 100: x's held-out c (t 50) is dropped, the rest compared."""
    u, i = [0, 0, 0, 0, 1, 1, 2, 2], [0, 1, 2, 3, 1, 2, 0, 2]
    reward = [4.0, 5.0, 1.0, 4.0, 3.0, 4.0, 2.0, 5.0]
    test = [False, True, True, True, False, True, False, True]
    t = [10, 200, 50, 300, 20, 150, 30, 400]
    users = [user + 3 * copy for copy in range(copies) for user in u]
    return pa.table({"u": users, "i": i * copies, "r": reward * copies, "test": test * copies,
                     "t": t * copies})  # fmt: skip


@pytest.mark.parametrize("copies", [1, 20])
def test_a_planted_snapshot_rescored_on_planted_rows_gives_the_hand_computed_metrics(
    tmp_path: Path, copies: int
) -> None:
    """Top-2 with the training item excluded, relevant above 3. v1: x ranks c, b (b hit; d,
    relevant, is not in its catalog), y ranks c, a (c hit), z (prior) ranks c, b (c hit); RMSE
    over the rows of known items x-b, y-c, z-c: errors 5, 1, 4. The new model (below): x ranks
    d, b (both hits), y and z miss; errors 0, 4, 5. Its NDCG and recall are 58 % and 60 % lower:
    within sampling noise for 3 users (not refused, and said so), beyond it for 60."""
    registry = Registry(str(tmp_path))
    version = _planted(registry, latest_event="1970-01-01T00:00:00.000100+00:00")
    users, items = ["x", "y", "z"] * copies, ["a", "b", "c", "d"]
    current, why = load_current(registry, "m", version, users, items)
    assert why is None and current is not None and current.seen_until == 100
    features = np.array([[1.0, 0], [0, 1], [0, 0], [1, 1]])
    weights = np.tile([[1.0, 5], [1, 1], [0, 1]], (copies, 1))
    found = versus_current(
        current, _rows(copies), np.ones(3 * copies, bool), np.ones(4, bool), (features, weights),
        k=2, relevant_above=3.0, implicit=False,
    )  # fmt: skip
    ndcg_x = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    means = {name: value for name, value in found.items() if not name.startswith("change_")}
    assert means == pytest.approx({
        "current_recall@2": 2.5 / 3, "current_ndcg@2": (ndcg_x + 2) / 3,
        "current_rmse": math.sqrt(42 / 3),
        "new_recall@2": 1 / 3, "new_ndcg@2": 1 / 3, "new_rmse": math.sqrt(41 / 3),
        "rows": 4 * copies, "users": 3 * copies, "unknown_users": copies,
        "unknown_item_rows": copies,
    })  # fmt: skip
    gate = versus_comparisons(found, "global_time", 0.02)
    refused = copies > 1
    assert [(c.name.split(" ")[0], c.worse) for c in gate] == [
        ("global_time_ndcg@2", refused), ("global_time_recall@2", refused),
        ("global_time_rmse", False),
    ]  # fmt: skip
    if not refused:
        lines = gate_outcome(version, EXTRA, {**EXTRA, "events": 12}, gate, 0.02, rescored="r")
        assert "within sampling noise (95 % interval of the change [" in lines[2]
        return
    message = r"ndcg@2 \(rows unseen by the current version\) 0\.3333 vs 0\.7956 \(-58\.1%, 95 %"
    with pytest.raises(GateRejectedError, match=message):
        check_gate(gate, 0.02, version, version + 1)


def test_a_current_version_without_its_latest_event_time_is_not_compared_and_says_why(
    tmp_path: Path,
) -> None:
    """A drain's stream positions say nothing of event times: no re-scoring, and the verdict
    names the holdout difference, the reason, and that the gate did not stop the version."""
    registry = Registry(str(tmp_path))
    version = _planted(registry)
    current, why = load_current(registry, "m", version, ["x"], ["a"])
    assert current is None and why is not None and "latest training event" in why
    lines = gate_outcome(version, EXTRA, {**EXTRA, "events": 12}, [], 0.02, unable=why)
    assert lines == [
        f"gate: NOT compared with the current v1: the holdouts differ (events 9 -> 12) and v1 "
        f"could not be scored on this run's holdout: {why}. Nothing was compared; the gate did "
        "not stop this version"
    ]


@pytest.mark.slow
def test_a_retrain_worse_than_the_current_version_on_its_holdout_is_not_promoted(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Current v1 is the planted truth of the synthetic events (score = u.v + b_u + b_i + mu,
    never trained on them: latest event 1970); `velox retrain` on those events re-scores v1 on
    the new holdout, finds the rank-4, 4-iteration ALS worse, publishes v2 and keeps v1."""
    truth = generate_synthetic(tmp_path / "data", SyntheticSpec(n_events=4000, seed=42))
    n_users, n_items = len(truth.user_ids), len(truth.item_ids)
    registry = Registry(str(tmp_path / "home" / "snapshots"))
    oracle = SnapshotData(
        kind="mf",
        item_ids=truth.item_ids,
        item_features=np.column_stack(
            [truth.item_factors, np.ones(n_items), truth.item_bias + truth.mean]
        ).astype(np.float32),
        user_ids=truth.user_ids,
        user_weights=np.column_stack(
            [truth.user_factors, truth.user_bias, np.ones(n_users)]
        ).astype(np.float32),
        user_counts=np.ones(n_users, np.int64),
        prior_mean=np.zeros(truth.user_factors.shape[1] + 2),
        lam=1.0,
        noise_std=truth.noise,
        extra={"dataset": "planted truth", "latest_event": "1970-01-01T00:00:00+00:00"},
    )
    registry.publish(MODEL, oracle)
    args = ["retrain", "--events", str(truth.files.events), "--model", MODEL, "--rank", "4"]
    done = run_velox(
        [*args, "--iterations", "4"], tmp_path, env={"VELOX_REDIS_URL": redis_server.url},
        timeout_s=600,
    )  # fmt: skip
    out = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, out[-3000:]
    assert "gate: the holdouts differ (dataset planted truth -> " in out
    assert "so the current v1 was re-scored on this run's holdout: " in out
    assert "0 of those users are new to v1" in out
    assert "version 2 is worse than the current version 1 beyond the tolerance 2.0%" in out
    assert "global_time_rmse (rows unseen by the current version)" in out
    assert (registry.versions(MODEL), registry.current(MODEL)) == ([1, 2], 1)
