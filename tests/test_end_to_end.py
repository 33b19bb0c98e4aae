"""The whole loop over real parts: Spark trains and publishes, uvicorn serves over a socket,
a real redis-server keeps the state, and every score can be recomputed from the snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from pyspark.sql import SparkSession

from batch.options import TrainOptions
from batch.train_command import run_train
from feature_store.registry import Registry
from feature_store.snapshot import Snapshot
from tests.online.live_server import LiveServer
from tests.support.redis_server import RedisServer
from velox.posterior import closed_form_mean
from velox.settings import VeloxSettings


@pytest.fixture(scope="module")
def trained(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> tuple[VeloxSettings, Snapshot]:
    """A snapshot trained by the Spark job on a small planted synthetic dataset."""
    home = Path(tmp_path_factory.mktemp("velox-home"))
    settings = VeloxSettings(home=home, model="e2e")
    options = TrainOptions(
        dataset="synthetic", model="e2e", synthetic_events=3000, rank=4, iterations=5
    )
    manifest = run_train(options, settings)
    registry = Registry(settings.resolved_snapshot_root())
    assert registry.current("e2e") == manifest.version
    return settings, registry.load("e2e")


@pytest.fixture(scope="module")
def server(
    trained: tuple[VeloxSettings, Snapshot], redis_server: RedisServer
) -> Iterator[LiveServer]:
    """`velox serve` over the trained snapshot and the test run's redis-server."""
    settings, _ = trained
    live = LiveServer(
        settings.home,
        {"VELOX_REDIS_URL": redis_server.url, "VELOX_MODEL": "e2e", "VELOX_SEED": "7"},
    )
    live.start()
    yield live
    live.stop()


def test_observed_reward_moves_the_score_to_the_closed_form(
    trained: tuple[VeloxSettings, Snapshot], server: LiveServer
) -> None:
    """predict → observe r for item i → the new score of i is the closed form over the snapshot."""
    _, snapshot = trained
    user = str(snapshot.user_ids[0])
    with httpx.Client(base_url=server.url, timeout=10) as client:
        top = client.get("/predict", params={"user": user, "k": 5})
        assert top.status_code == 200, top.text
        body = top.json()
        assert body["version"] == snapshot.version and len(body["items"]) == 5
        item = body["items"][0]["item"]
        row = snapshot.item_index[item]
        x = snapshot.items.features[row].astype(np.float64)
        w0 = snapshot.w0_for(user)
        before = client.get("/predict", params={"user": user, "item": item}).json()
        assert before["score"] == pytest.approx(float(x @ w0), rel=1e-5)

        rewards = [5.0, 1.0]
        for n, reward in enumerate(rewards):
            answer = client.post(
                "/observe",
                json={
                    "user": user,
                    "item": item,
                    "reward": reward,
                    "prediction_id": body["prediction_id"],
                    "event_id": f"e2e-{n}",
                },
            )
            assert answer.status_code == 200, answer.text
        after = client.get("/predict", params={"user": user, "item": item}).json()

    # The prior is the batch head's posterior: mean w0, precision λI + the user's Gram matrix.
    precision = snapshot.precision_for(user)
    assert precision is not None
    observed = np.vstack([x, x])
    rhs = precision @ w0 + observed.T @ np.array(rewards)
    w = np.linalg.solve(precision + observed.T @ observed, rhs)
    expected = float(x @ w)
    # Without the Gram matrix (λI around w0) the same events would move the score further.
    isotropic = float(x @ closed_form_mean(w0, snapshot.lam, observed, np.array(rewards)))
    assert abs(expected - float(x @ w0)) < abs(isotropic - float(x @ w0))
    assert after["score"] == pytest.approx(expected, rel=1e-5)
    assert after["score"] != pytest.approx(before["score"], rel=1e-3)
