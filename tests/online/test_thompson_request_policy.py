"""A request's `policy=thompson` explores at the snapshot's calibrated scale, as the default."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np

from feature_store.registry import Registry
from tests.online.live_server import LiveServer
from tests.online.redis_view import logged_decisions
from tests.online.synthetic import publish, synthetic_snapshot
from tests.support.redis_server import RedisServer
from velox.policies import make_policy
from velox.policies.calibration import calibrated_thompson_scale


def test_a_bare_thompson_request_uses_the_calibrated_scale(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    data = synthetic_snapshot(n_users=40, seed=4)
    rng = np.random.default_rng(4)
    # Users much alike: their scores vary far less than the prior predicts, so scale < 1.
    common = rng.standard_normal(data.user_weights.shape[1])
    data.user_weights = (common + 0.05 * rng.standard_normal(data.user_weights.shape)).astype(
        np.float32
    )
    data.user_ids = [f"known{u}" for u in range(40)]
    data.user_counts = np.full(40, 3, dtype=np.int64)
    root = str(tmp_path / "snapshots")
    publish(root, "movies", data)
    snapshot = Registry(root).load("movies")
    scale = calibrated_thompson_scale(
        snapshot.items.features, snapshot.user_weights, lam=snapshot.lam,
        noise_std=snapshot.noise_std,
    )  # fmt: skip
    assert scale < 0.5
    expected = make_policy("thompson", thompson_scale=scale).spec
    server = LiveServer(
        tmp_path / "home",
        {"VELOX_REDIS_URL": redis_server.url, "VELOX_SNAPSHOT_ROOT": root, "VELOX_MODEL": "movies"},
    )
    (tmp_path / "home").mkdir()
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for user, params in (("by-default", {}), ("by-request", {"policy": "thompson"})):
                answer = http.get("/predict", params={"user": user, "k": 3, **params})
                assert answer.status_code == 200, answer.text
                (logged,) = logged_decisions(redis_server.url, "movies", user)
                assert logged["policy"] == expected
            explicit = http.get(
                "/predict", params={"user": "by-scale", "k": 3, "policy": "thompson:1"}
            )
            assert explicit.status_code == 200
            (logged,) = logged_decisions(redis_server.url, "movies", "by-scale")
            assert logged["policy"] == "thompson:1.0"
    finally:
        server.stop()
