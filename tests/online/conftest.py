"""Fixtures of the service tests: a flushed Redis, synthetic snapshots, a live server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.online.live_server import LiveServer
from tests.online.synthetic import publish, synthetic_snapshot
from tests.support.redis_server import RedisServer


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The session's redis-server, flushed before and after the test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    client.flushall()
    client.close()


@pytest.fixture(scope="module")
def snapshot_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A registry root holding model `movies` v1 (synthetic, 40 items, d = 6), current."""
    root = str(tmp_path_factory.mktemp("snapshots"))
    publish(root, "movies", synthetic_snapshot())
    return root


@pytest.fixture(scope="module")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, snapshot_root: str
) -> Iterator[LiveServer]:
    """`velox serve` (one worker) over the session's Redis and `snapshot_root`."""
    env = {
        "VELOX_REDIS_URL": redis_server.url,
        "VELOX_SNAPSHOT_ROOT": snapshot_root,
        "VELOX_MODEL": "movies",
        "VELOX_SEED": "7",
    }
    server = LiveServer(tmp_path_factory.mktemp("home"), env)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client of `live_server`."""
    with httpx.Client(base_url=live_server.url, timeout=10.0) as http:
        yield http
