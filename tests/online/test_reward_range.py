"""A reward outside the configured range, or not a JSON number, is refused before anything is
written; a user's scores stay finite under every policy (issue 23, items 1 and 8)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from feature_store.registry import Registry
from tests.online.live_server import LiveServer
from tests.online.rebase_support import expected_scores, observe, scores, wait_for_version
from tests.online.redis_view import redis_contents
from tests.online.synthetic import publish, synthetic_snapshot
from tests.support.redis_server import RedisServer

REFUSED = [
    ("huge reward", b'{"user": "p", "item": "i1", "reward": 1e50}', "outside the accepted range"),
    ("overflowing reward", b'{"user": "p", "item": "i1", "reward": 1e300}', "outside"),
    ("boolean reward", b'{"user": "p", "item": "i1", "reward": true}', "valid number"),
    ("string reward", b'{"user": "p", "item": "i1", "reward": "5"}', "valid number"),
]
POLICIES = ["thompson", "greedy", "egreedy:0.1", "linucb", "slate"]


@pytest.mark.parametrize(("case", "body", "message"), REFUSED, ids=[c[0] for c in REFUSED])
def test_bad_reward_is_refused_and_writes_nothing(
    client: httpx.Client, redis_server: RedisServer, case: str, body: bytes, message: str
) -> None:
    """422 with {"error": …}, Redis unchanged, and the user's answers stay finite and full."""
    client.post("/observe", json={"user": "p", "item": "i2", "reward": 1.0})
    before = redis_contents(redis_server.url)
    response = client.post("/observe", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, (case, response.text)
    assert message in response.json()["error"]
    assert redis_contents(redis_server.url) == before
    one = client.get("/predict", params={"user": "p", "item": "i1"}).json()
    assert math.isfinite(one["score"]) and math.isfinite(one["std"])
    for policy in POLICIES:
        answer = client.get("/predict", params={"user": "p", "k": "5", "policy": policy})
        assert answer.status_code == 200, (policy, answer.text)
        items = answer.json()["items"]
        assert len(items) == 5 and all(math.isfinite(item["score"]) for item in items)


def test_the_range_ends_are_accepted(client: httpx.Client) -> None:
    """The default range is [-1e6, 1e6], both ends included; integers are numbers too."""
    for reward in (1_000_000, -1e6, 3):
        body = {"user": "ends", "item": "i3", "reward": reward}
        assert client.post("/observe", json=body).status_code == 200
    refused = client.post("/observe", json={"user": "ends", "item": "i3", "reward": 1.000001e6})
    assert refused.status_code == 422
    assert "[-1e+06, 1e+06]" in refused.json()["error"]


@pytest.fixture
def narrow_server(tmp_path: Path, redis_url: str, snapshot_root: str) -> Iterator[LiveServer]:
    """A server that accepts rewards in [0, 5] only (VELOX_REWARD_MIN/MAX)."""
    env = {
        "VELOX_REDIS_URL": redis_url,
        "VELOX_SNAPSHOT_ROOT": snapshot_root,
        "VELOX_MODEL": "movies",
        "VELOX_REWARD_MIN": "0",
        "VELOX_REWARD_MAX": "5",
    }
    server = LiveServer(tmp_path, env)
    server.start()
    yield server
    server.stop()


def test_the_range_is_configurable(narrow_server: LiveServer) -> None:
    """VELOX_REWARD_MIN=0, VELOX_REWARD_MAX=5: 5 is learned from, 6 and -1 are refused."""
    with httpx.Client(base_url=narrow_server.url, timeout=10.0) as http:
        assert (
            http.post("/observe", json={"user": "n", "item": "i1", "reward": 5}).status_code == 200
        )
        for reward in (6, -1):
            refused = http.post("/observe", json={"user": "n", "item": "i1", "reward": reward})
            assert refused.status_code == 422
            assert "[0, 5]" in refused.json()["error"]


def test_a_logged_reward_outside_the_range_is_not_replayed(tmp_path: Path, redis_url: str) -> None:
    """A reward logged while the range was wider (or before it was checked) is skipped when
    the user is rebased onto a new version, as training skips it: the user's scores are the
    closed form of the other events, finite."""
    root = str(tmp_path / "snapshots")
    publish(root, "movies", synthetic_snapshot(seed=0))
    env = {"VELOX_REDIS_URL": redis_url, "VELOX_SNAPSHOT_ROOT": root, "VELOX_MODEL": "movies"}
    wide = LiveServer(tmp_path / "wide", {**env, "VELOX_REWARD_MAX": "1e12"})
    (tmp_path / "wide").mkdir()
    wide.start()
    try:
        with httpx.Client(base_url=wide.url, timeout=10.0) as http:
            good = [observe(http, "legacy", "i3", 2.0), observe(http, "legacy", "i5", -1.0)]
            observe(http, "legacy", "i7", 1e11)
    finally:
        wide.stop()
    publish(root, "movies", synthetic_snapshot(seed=3, shift=0.4))  # v2: a rebase replays all
    (tmp_path / "default").mkdir()
    server = LiveServer(tmp_path / "default", env)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            wait_for_version(http, 2)
            got = scores(http, "legacy")
    finally:
        server.stop()
    want = expected_scores(Registry(root).load("movies", 2), "legacy", good)
    assert got.keys() == want.keys()
    assert all(math.isfinite(value) for value in got.values())
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=1e-4, atol=1e-4)
