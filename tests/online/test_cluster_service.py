"""`velox serve` over a real Redis Cluster (3 masters + 3 replicas): closed-form answers from
every master, a slot migration followed (ASK, then MOVED), default rewards swept, the drain
and the retrain cycle's bookkeeping on the cluster, and a wrong cluster URL said in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from batch.drain import Drain
from batch.redis_client import redis_client
from jobs.cycle_log import CycleLog, Outcome
from jobs.cycle_runner import CycleResult, CycleRunner
from jobs.drift import online_error
from online.redis_keys import LOG_PARTITIONS, UserKeys, events_key
from tests.online.closed_form import expected_score, load
from tests.online.live_server import LiveServer
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import free_port

Observations = list[tuple[str, float]]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """One cluster for the module."""
    nodes = RedisCluster(tmp_path_factory.mktemp("cluster"))
    nodes.start()
    yield nodes
    nodes.stop()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, cluster: RedisCluster, snapshot_root: str
) -> Iterator[LiveServer]:
    """`velox serve` over the cluster; /predict?k= answers get a default reward 0 after 1 s."""
    env = {
        "VELOX_REDIS_URL": cluster.url,
        "VELOX_SNAPSHOT_ROOT": snapshot_root,
        "VELOX_MODEL": "movies",
        "VELOX_SEED": "7",
        "VELOX_DEFAULT_REWARD": "0.0",
        "VELOX_PREDICTION_TTL_S": "1",
        "VELOX_REWARD_SWEEP_INTERVAL_S": "0.1",
    }
    live = LiveServer(tmp_path_factory.mktemp("home"), env)
    live.start()
    yield live
    live.stop()


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client of the server."""
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


def observe(http: httpx.Client, user: str, item: str, reward: float) -> None:
    """POST /observe, which must succeed."""
    response = http.post("/observe", json={"user": user, "item": item, "reward": reward})
    assert response.status_code == 200, response.text


def assert_closed_form(
    http: httpx.Client, root: str, user: str, observations: Observations
) -> None:
    """The served score of a few items equals the closed form over `observations`."""
    snapshot = load(root)
    for item in ("i0", "i7", "i13"):
        response = http.get("/predict", params={"user": user, "item": item})
        assert response.status_code == 200, response.text
        expected = expected_score(snapshot, user, item, observations)
        assert response.json()["score"] == pytest.approx(expected, rel=1e-5, abs=1e-6)


def users_on_every_master(cluster: RedisCluster) -> dict[int, str]:
    """One user per master (by where the user's keys live)."""
    found: dict[int, str] = {}
    masters = cluster.master_ports()
    for n in range(1000):
        user = f"spread-{n}"
        found.setdefault(cluster.master_of(UserKeys.of("movies", user).state(1)), user)
        if len(found) == len(masters):
            return found
    raise AssertionError("could not place a user on every master")


def test_every_master_serves_the_closed_form(
    cluster: RedisCluster, http: httpx.Client, snapshot_root: str
) -> None:
    rng = np.random.default_rng(11)
    for port, user in users_on_every_master(cluster).items():
        observations = [(f"i{int(rng.integers(40))}", float(rng.normal())) for _ in range(4)]
        for item, reward in observations:
            observe(http, user, item, reward)
        assert_closed_form(http, snapshot_root, user, observations)
        state = UserKeys.of("movies", user).state(1)
        assert cluster.node(port).exists(state) == 1  # on the master of its slot


def test_a_slot_migration_is_followed(
    cluster: RedisCluster, http: httpx.Client, snapshot_root: str
) -> None:
    user = "mover"
    keys = UserKeys.of("movies", user)
    observations: Observations = [("i1", 1.0), ("i2", -0.5)]
    for item, reward in observations:
        observe(http, user, item, reward)
    source = cluster.master_of(keys.state(1))
    target = next(p for p in cluster.master_ports() if p != source)
    slot = int(cluster.node(source).cluster("KEYSLOT", keys.state(1)))

    cluster.migrate_slot(slot, source, target, finish=False)  # keys moved, slot still open
    assert cluster.keys_in_slot(source, slot) == 0
    assert_closed_form(http, snapshot_root, user, observations)  # answered through ASK
    cluster.finish_migration(slot, target)
    observations.append(("i3", 2.0))
    observe(http, user, "i3", 2.0)  # MOVED: the slot map is refreshed
    assert_closed_form(http, snapshot_root, user, observations)
    assert cluster.master_of(keys.state(1)) == target
    assert cluster.node(target).exists(keys.state(1)) == 1


def test_default_rewards_are_swept_on_the_cluster(http: httpx.Client, snapshot_root: str) -> None:
    user = "swept"
    response = http.get("/predict", params={"user": user, "k": 3})
    assert response.status_code == 200, response.text
    shown = [item["item"] for item in response.json()["items"]]
    deadline = time.monotonic() + 20
    scores: list[float] = []
    expected = [expected_score(load(snapshot_root), user, "i0", [(i, 0.0) for i in shown])]
    while time.monotonic() < deadline and scores != pytest.approx(expected, rel=1e-5):
        time.sleep(0.2)
        scores = [http.get("/predict", params={"user": user, "item": "i0"}).json()["score"]]
    assert scores == pytest.approx(expected, rel=1e-5)


def test_the_drain_and_the_cycle_bookkeeping_run_on_the_cluster(
    cluster: RedisCluster, http: httpx.Client, tmp_path: Path
) -> None:
    client = redis_client(cluster.url)
    logged = sum(int(client.xlen(events_key("movies", p))) for p in range(LOG_PARTITIONS))
    assert logged > 0
    applied, _ = online_error(client, "movies", 1)
    assert applied == logged  # every applied /observe counted its error on its partition

    report = Drain(client, "movies", tmp_path / "drained").run()
    assert report.entries == logged
    assert sum(int(client.xlen(events_key("movies", p))) for p in range(LOG_PARTITIONS)) == 0

    def cycle(_: object) -> CycleResult:
        return CycleResult(version=2, promoted=False, drained=report.entries, detail="test")

    record = CycleRunner(client, "movies", cycle).run("manual")
    assert record.outcome is Outcome.PUBLISHED
    assert CycleLog(client, "movies").counts() == {"published": 1}


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        ("redis+cluster://127.0.0.1:99999", 2, "bad port"),
        ("redis+cluster://127.0.0.1:{free}", 1, "Redis Cluster 127.0.0.1:{free} is unavailable"),
    ],
)
def test_serve_refuses_a_bad_cluster_url_in_one_line(
    tmp_path: Path, url: str, status: int, says: str
) -> None:
    free = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("VELOX_")}
    env = {**inherited, "VELOX_HOME": str(tmp_path), "VELOX_REDIS_URL": url.format(free=free)}
    command = [sys.executable, "-c", "from velox.cli import main; main()", "serve"]
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == status
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says.format(free=free) in lines[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "redis").exists()  # no embedded Redis started, nothing written
