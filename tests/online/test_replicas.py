"""Two `velox serve` processes on different ports sharing one Redis (replicas behind a load
balancer): concurrent observes for one user spread over both give exactly the sequential
posterior, and both serve a promoted version within one poll interval."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import redis

from online.redis_keys import UserKeys
from tests.online.closed_form import expected_mean, expected_score, load
from tests.online.live_server import LiveServer
from tests.online.redis_view import user_events
from tests.online.synthetic import publish, synthetic_snapshot
from tests.support.redis_server import RedisServer
from velox.state_codec import decode_state

POLL_INTERVAL_S = 1.0
pytestmark = pytest.mark.slow
N_OBSERVATIONS = 120


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[tuple[list[LiveServer], str]]:
    """Two single-worker servers over the session's (flushed) Redis and a fresh registry."""
    redis.Redis.from_url(redis_server.url).flushall()
    tmp_path = tmp_path_factory.mktemp("replicas")
    root = str(tmp_path / "snapshots")
    publish(root, "movies", synthetic_snapshot())
    env = {
        "VELOX_REDIS_URL": redis_server.url,
        "VELOX_SNAPSHOT_ROOT": root,
        "VELOX_MODEL": "movies",
        "VELOX_POLL_INTERVAL_S": str(POLL_INTERVAL_S),
    }
    servers = [LiveServer(tmp_path / f"home{n}", env) for n in range(2)]
    try:
        for server in servers:
            server.home.mkdir()
            server.start()
        yield servers, root
    finally:
        for server in servers:
            server.stop()  # a server never started stops as a no-op


async def spread(urls: list[str], observations: list[tuple[str, float]]) -> list[int]:
    """Post every observation at once, alternating between the servers."""
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:
        answers = await asyncio.gather(
            *[
                client.post(
                    urls[n % len(urls)] + "/observe",
                    json={"user": "shared", "item": item, "reward": reward},
                )
                for n, (item, reward) in enumerate(observations)
            ]
        )
    return [answer.status_code for answer in answers]


def test_concurrent_observes_over_two_replicas_give_the_sequential_posterior(
    replicas: tuple[list[LiveServer], str], redis_server: RedisServer
) -> None:
    servers, root = replicas
    redis_url = redis_server.url
    rng = np.random.default_rng(5)
    observations = [
        (f"i{int(rng.integers(40))}", float(np.round(rng.normal(), 3)))
        for _ in range(N_OBSERVATIONS)
    ]
    statuses = asyncio.run(spread([server.url for server in servers], observations))
    assert statuses == [200] * N_OBSERVATIONS

    snapshot = load(root)
    stored = redis.Redis.from_url(redis_url).get(UserKeys.of("movies", "shared").state(1))
    assert isinstance(stored, bytes)
    posterior = decode_state(stored[8:])
    assert posterior.count == N_OBSERVATIONS
    np.testing.assert_allclose(
        posterior.mean(), expected_mean(snapshot, "shared", observations), rtol=1e-8, atol=1e-10
    )
    assert len(user_events(redis_url, "movies", "shared")) == N_OBSERVATIONS
    expected = expected_score(snapshot, "shared", "i3", observations)
    for server in servers:  # both read the one state
        params = {"user": "shared", "item": "i3"}
        score = httpx.get(server.url + "/predict", params=params).json()["score"]
        assert score == pytest.approx(expected, rel=1e-5)


def test_both_replicas_serve_a_promoted_version_within_one_poll_interval(
    replicas: tuple[list[LiveServer], str],
) -> None:
    servers, root = replicas
    params = {"user": "anyone", "item": "i1"}
    assert [httpx.get(s.url + "/predict", params=params).json()["version"] for s in servers] == [
        1,
        1,
    ]
    promoted_at = time.monotonic()
    assert publish(root, "movies", synthetic_snapshot(shift=0.5)) == 2  # published + promoted
    seen: dict[int, float] = {}
    deadline = promoted_at + 10 * POLL_INTERVAL_S
    while len(seen) < len(servers) and time.monotonic() < deadline:
        for n, server in enumerate(servers):
            if (
                n not in seen
                and httpx.get(server.url + "/predict", params=params).json()["version"] == 2
            ):
                seen[n] = time.monotonic() - promoted_at
        time.sleep(0.02)
    assert sorted(seen) == [0, 1]
    # A poll comes at most one interval after the promote; loading a 40-item snapshot and
    # this loop's own HTTP calls take the rest of the allowance.
    assert max(seen.values()) <= POLL_INTERVAL_S + 0.5, seen
