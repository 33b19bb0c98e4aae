"""The service's default Thompson sampling explores at the scale its snapshot calibrates."""

from __future__ import annotations

import uuid

import httpx

from feature_store.registry import Registry
from tests.online.redis_view import logged_decisions
from tests.support.redis_server import RedisServer
from velox.policies import make_policy
from velox.policies.calibration import calibrated_thompson_scale


def test_default_thompson_uses_the_snapshot_calibrated_scale(
    client: httpx.Client, redis_server: RedisServer, snapshot_root: str
) -> None:
    snapshot = Registry(snapshot_root).load("movies")
    scale = calibrated_thompson_scale(
        snapshot.items.features, snapshot.user_weights, lam=snapshot.lam,
        noise_std=snapshot.noise_std,
    )  # fmt: skip
    user = f"calibrated-{uuid.uuid4().hex}"
    answer = client.get("/predict", params={"user": user, "k": 3})
    assert answer.status_code == 200, answer.text
    (logged,) = logged_decisions(redis_server.url, "movies", user)
    # The decision log names the scale that ran: a bare "thompson" is the calibrated one.
    assert logged["policy"] == make_policy("thompson", thompson_scale=scale).spec
