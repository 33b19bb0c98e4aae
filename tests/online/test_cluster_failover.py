"""Failover under load: a killed Redis Cluster master (its replica promoted), and a single
Redis killed and restarted from its AOF. Clients retry with the same event id until answered
200; afterwards every acknowledged event is in the feedback log exactly once, each user's
posterior is the closed form over the acknowledged events, and the service never restarted."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from batch.redis_client import redis_client
from online.redis_keys import UserKeys
from tests.online.closed_form import expected_score, load
from tests.online.live_server import LiveServer
from tests.support.observe_load import (
    Audit,
    LoadResult,
    logged_event_ids,
    planned_events,
    run_load,
)
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer

USERS, PER_USER = 6, 30
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """One cluster for the module."""
    nodes = RedisCluster(tmp_path_factory.mktemp("cluster"))
    nodes.start()
    yield nodes
    nodes.stop()


def serve(home: Path, redis_url: str, snapshot_root: str, **env: str) -> LiveServer:
    """A started `velox serve` over `redis_url`."""
    home.mkdir(parents=True, exist_ok=True)
    base = {"VELOX_REDIS_URL": redis_url, "VELOX_SNAPSHOT_ROOT": snapshot_root}
    live = LiveServer(home, {**base, "VELOX_MODEL": "movies", **env})
    live.start()
    return live


def load_through(
    url: str, seed: int, fault: Callable[[], float]
) -> tuple[dict[str, tuple[str, str, float]], LoadResult, float]:
    """Run the load in a thread, call `fault` once a third is acknowledged (it returns when
    the fault happened), wait for the load to finish."""
    events = planned_events(USERS, PER_USER, 40, seed)
    result = LoadResult()
    thread = threading.Thread(target=lambda: asyncio.run(run_load(url, events, result)))
    thread.start()
    deadline = time.monotonic() + 60
    while len(result.acknowledged) < len(events) // 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    killed_at = fault()
    thread.join(timeout=150)
    assert not thread.is_alive()
    return events, result, killed_at


def assert_exactly_once(
    live: LiveServer, redis_url: str, snapshot_root: str, events: dict[str, tuple[str, str, float]],
    result: LoadResult, killed_at: float,
) -> Audit:  # fmt: skip
    """Every event acknowledged, in the log once, and every user's posterior exact."""
    audit = Audit.of(result, logged_event_ids(redis_client(redis_url), "movies"), killed_at)
    assert (audit.acknowledged, audit.lost, audit.duplicated) == (len(events), 0, 0)
    snapshot = load(snapshot_root)
    with httpx.Client(base_url=live.url, timeout=10) as http:
        for user in sorted({user for user, _, _ in events.values()}):
            mine = [(item, r) for u, item, r in result.acknowledged.values() if u == user]
            score = http.get("/predict", params={"user": user, "item": "i5"}).json()["score"]
            assert score == pytest.approx(expected_score(snapshot, user, "i5", mine), rel=1e-5)
    return audit


def test_a_killed_master_loses_and_doubles_nothing_acknowledged(
    cluster: RedisCluster, tmp_path: Path, snapshot_root: str
) -> None:
    live = serve(tmp_path, cluster.url, snapshot_root, VELOX_REDIS_WAIT_REPLICAS="1")
    seed = 21
    victim = cluster.master_of(UserKeys.of("movies", f"load-{seed}-0").state(1))
    replica = cluster.replica_of(victim)

    def kill_master() -> float:
        killed_at = time.monotonic()
        cluster.kill(victim)
        deadline = time.monotonic() + 30
        while replica not in cluster.master_ports() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert replica in cluster.master_ports()  # promoted
        cluster.start_node(victim)  # rejoins as the new master's replica
        cluster.wait_ok()
        return killed_at

    try:
        events, result, killed_at = load_through(live.url, seed, kill_master)
        audit = assert_exactly_once(live, cluster.url, snapshot_root, events, result, killed_at)
    finally:
        live.stop()
    assert audit.failed_attempts > 0  # the fault was felt, and survived without a restart
    assert cluster.replica_of(replica) == victim


def test_a_single_redis_killed_and_restarted_from_its_aof(
    tmp_path: Path, snapshot_root: str
) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=True)  # appendfsync always
    server.start()
    try:
        live = serve(tmp_path / "home", server.url, snapshot_root)
    except BaseException:
        server.stop()
        raise

    def kill_and_restart() -> float:
        killed_at = time.monotonic()
        server.kill()
        time.sleep(2.5)  # longer than the service's own retries (~1.6 s): clients see 503s
        server.start()
        return killed_at

    try:
        events, result, killed_at = load_through(live.url, 22, kill_and_restart)
        audit = assert_exactly_once(live, server.url, snapshot_root, events, result, killed_at)
    finally:
        live.stop()
        server.stop()
    assert audit.failed_attempts > 0
