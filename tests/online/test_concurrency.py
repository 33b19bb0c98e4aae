"""200 concurrent /observe for one user against 2 uvicorn workers = the sequential posterior."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis

from online.redis_keys import UserKeys
from tests.online.closed_form import expected_mean, load
from tests.online.live_server import LiveServer
from tests.online.redis_view import user_events
from tests.support.redis_server import RedisServer
from velox.state_codec import decode_state

N_OBSERVATIONS = 200


@pytest.fixture
def two_workers(tmp_path: Path, redis_url: str, snapshot_root: str) -> Iterator[LiveServer]:
    """`velox serve --workers 2` over the session's Redis."""
    env = {"VELOX_REDIS_URL": redis_url, "VELOX_SNAPSHOT_ROOT": snapshot_root}
    server = LiveServer(tmp_path, {**env, "VELOX_MODEL": "movies"}, workers=2)
    server.start()
    yield server
    server.stop()


async def observe_all(url: str, observations: list[tuple[str, float]]) -> list[int]:
    """Send every observation at once over many connections; the status codes."""
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as client:
        responses = await asyncio.gather(
            *[
                client.post("/observe", json={"user": "crowd", "item": item, "reward": reward})
                for item, reward in observations
            ]
        )
    return [response.status_code for response in responses]


def test_concurrent_observes_give_the_sequential_posterior(
    two_workers: LiveServer, redis_server: RedisServer, snapshot_root: str
) -> None:
    rng = np.random.default_rng(3)
    observations = [
        (f"i{int(rng.integers(40))}", float(np.round(rng.normal(), 3)))
        for _ in range(N_OBSERVATIONS)
    ]
    statuses = asyncio.run(observe_all(two_workers.url, observations))
    assert statuses == [200] * N_OBSERVATIONS

    stored = redis.Redis.from_url(redis_server.url).get(UserKeys.of("movies", "crowd").state(1))
    assert isinstance(stored, bytes)
    posterior = decode_state(stored[8:])
    assert posterior.count == N_OBSERVATIONS
    snapshot = load(snapshot_root)
    np.testing.assert_allclose(
        posterior.mean(), expected_mean(snapshot, "crowd", observations), rtol=1e-8, atol=1e-10
    )
    assert len(user_events(redis_server.url, "movies", "crowd")) == N_OBSERVATIONS
