"""The embedded Redis: starts on a unix socket, persists through restarts (AOF), stops."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import redis

from online.embedded_redis import EmbeddedRedis, _answers_ping
from online.errors import EmbeddedRedisError
from tests.online.live_server import LiveServer
from tests.online.synthetic import publish, synthetic_snapshot


def test_embedded_redis_persists_across_restarts(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    with server:
        assert server.running
        redis.Redis.from_url(server.url).set("k", b"v1")
    assert not server.running
    assert not _answers_ping(server.socket_path)
    with server:
        assert redis.Redis.from_url(server.url).get("k") == b"v1"
        with pytest.raises(EmbeddedRedisError, match="already answers"):
            EmbeddedRedis(tmp_path / "redis").start()
    assert (tmp_path / "redis").glob("appendonly.aof*")


def test_too_long_socket_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedRedisError, match="VELOX_HOME"):
        EmbeddedRedis(tmp_path / ("d" * 120))


def test_serve_without_redis_url_owns_one_embedded_redis(tmp_path: Path) -> None:
    home = tmp_path / "home"
    publish(str(home / "snapshots"), "movies", synthetic_snapshot())
    socket_path = home / "redis" / "redis.sock"

    def score(server: LiveServer, user: str) -> float:
        params = {"user": user, "item": "i3"}
        value: float = httpx.get(server.url + "/predict", params=params).json()["score"]
        return value

    server = LiveServer(home, {"VELOX_MODEL": "movies"}, workers=2)
    server.start()
    try:
        body = {"user": "u", "item": "i3", "reward": 2.0}
        assert httpx.post(server.url + "/observe", json=body).status_code == 200
        assert _answers_ping(socket_path)
        before = score(server, "u")
    finally:
        server.stop()
    assert not _answers_ping(socket_path)
    server.start()
    try:
        after, fresh = score(server, "u"), score(server, "someone-else")
    finally:
        server.stop()
    assert after == before
    assert fresh != before


def test_a_single_worker_stops_its_embedded_redis_on_sigterm(tmp_path: Path) -> None:
    home = tmp_path / "home"
    publish(str(home / "snapshots"), "movies", synthetic_snapshot())
    server = LiveServer(home, {"VELOX_MODEL": "movies"}, workers=1)
    server.start()
    try:
        assert _answers_ping(home / "redis" / "redis.sock")
    finally:
        server.stop()  # SIGTERM
    assert not _answers_ping(home / "redis" / "redis.sock")
