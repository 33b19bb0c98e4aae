"""Rebase over HTTP: after a swap (or a rollback) every user's posterior is the version's prior
plus exactly the user's events after the version's training cutoff, even while two versions
serve at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis

from feature_store.log_cutoff import LogCutoff
from feature_store.registry import Registry
from online.redis_keys import LOG_PARTITIONS, UserKeys, partition_of
from online.redis_store import RedisWeightStore
from online.weight_store import RedisStoreConfig, UserRead
from tests.online.live_server import LiveServer
from tests.online.rebase_support import (
    Logged,
    after_cutoff,
    cutoff_after,
    expected_scores,
    observe,
    observe_many,
    scores,
    wait_for_version,
)
from tests.online.synthetic import publish, synthetic_snapshot
from tests.support.redis_server import RedisServer

MODEL = "movies"
USERS = [f"known{u}" for u in range(5)] + [f"fresh{u}" for u in range(5)]


def assert_posteriors(client: httpx.Client, root: str, version: int, events: list[Logged]) -> None:
    """Every user's scores under `version` follow the closed form over `events` (all users;
    float32 features: scores match to single precision)."""
    snapshot = Registry(root).load(MODEL, version)
    for user in USERS:
        assert scores(client, user) == pytest.approx(
            expected_scores(snapshot, user, events), rel=1e-5, abs=1e-6
        ), user


def start(tmp: Path, redis_url: str, root: str) -> LiveServer:
    """A service over `root` and the test's Redis."""
    env = {"VELOX_REDIS_URL": redis_url, "VELOX_SNAPSHOT_ROOT": root, "VELOX_MODEL": MODEL}
    server = LiveServer(tmp, env)
    server.start()
    return server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The session's redis-server, flushed before and after the test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    client.flushall()


def test_swap_and_rollback_keep_every_event_exactly_once(tmp_path: Path, redis_url: str) -> None:
    root = str(tmp_path / "snapshots")
    publish(root, MODEL, synthetic_snapshot(seed=0))
    server = start(tmp_path, redis_url, root)
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            first = observe_many(client, USERS, per_user=6, seed=1)
            trained = cutoff_after(first[:30])  # the retrain saw the first 30 events
            v2 = replace(synthetic_snapshot(seed=3, shift=0.4), training_cutoff=trained.to_json())
            publish(root, MODEL, v2)
            wait_for_version(client, 2)
            # half the users observe first (the observe path rebases them), the rest are
            # first touched by /predict
            second = observe_many(client, USERS[::2], per_user=3, seed=2)
            assert_posteriors(client, root, 2, after_cutoff(trained, first + second))

            Registry(root).rollback(MODEL)  # v1 trained on nothing of the log
            wait_for_version(client, 1)
            assert_posteriors(client, root, 1, first + second)
            third = observe_many(client, USERS[1::3], per_user=2, seed=3)
            assert_posteriors(client, root, 1, first + second + third)

            Registry(root).promote(MODEL, 2)  # v2's states lag behind the events of v1
            wait_for_version(client, 2)
            assert_posteriors(client, root, 2, after_cutoff(trained, first + second + third))
    finally:
        server.stop()


def test_two_versions_serving_at_once_stay_exact(tmp_path: Path, redis_url: str) -> None:
    # Two services share one Redis; one serves v1, the other v2 (as replicas do mid-swap).
    old_root, new_root = str(tmp_path / "old"), str(tmp_path / "new")
    for root in (old_root, new_root):
        publish(root, MODEL, synthetic_snapshot(seed=0))
    old = start(tmp_path, redis_url, old_root)
    new: LiveServer | None = None
    try:
        with httpx.Client(base_url=old.url, timeout=10.0) as old_client:
            first = observe_many(old_client, USERS, per_user=2, seed=4)
            trained = cutoff_after(first[:12])
            v2 = replace(synthetic_snapshot(seed=5, shift=-0.3), training_cutoff=trained.to_json())
            publish(new_root, MODEL, v2)
            new = start(tmp_path, redis_url, new_root)
            with httpx.Client(base_url=new.url, timeout=10.0) as new_client:
                wait_for_version(new_client, 2)
                clients = (old_client, new_client)
                rng = np.random.default_rng(6)
                jobs = [
                    (clients[n % 2], USERS[n % 3], f"i{rng.integers(40)}", float(rng.normal()))
                    for n in range(150)
                ]  # three hot users, both versions updating them concurrently
                with ThreadPoolExecutor(max_workers=8) as pool:
                    events = first + list(pool.map(lambda job: observe(*job), jobs))
                assert_posteriors(old_client, old_root, 1, events)
                assert_posteriors(new_client, new_root, 2, after_cutoff(trained, events))
    finally:
        old.stop()
        if new is not None:
            new.stop()


def test_a_stale_user_costs_one_more_round_trip_once(redis_url: str) -> None:
    store = RedisWeightStore(RedisStoreConfig(url=redis_url))
    client = redis.Redis.from_url(redis_url)
    keys = UserKeys.of(MODEL, "bob")
    log_id = client.xadd(keys.events, {"event_id": "e1", "user_id": "bob", "item_id": "i3",
                                       "reward": "2.0", "timestamp": "1", "prediction_id": "",
                                       "propensity": ""})  # fmt: skip
    client.rpush(keys.recent, log_id)
    start_cutoff = LogCutoff.start(LOG_PARTITIONS).positions[partition_of("bob")]

    async def body() -> list[tuple[int, bool]]:
        seen: list[tuple[int, bool]] = []
        for _ in range(2):
            before = store.client.round_trips
            read: UserRead = await store.read(MODEL, 1, "bob", with_seen=False)
            if not read.is_current(start_cutoff):
                caught = await store.catch_up(MODEL, 1, "bob", start_cutoff)
                assert [e.event.event_id for e in caught.events] == ["e1"]
                store.save_rebased(MODEL, 1, "bob", caught, b"rebased")
            seen.append((store.client.round_trips - before, read.state is not None))
        await store.close()
        return seen

    # first read: stale (no state, an event after the cutoff) -> catch-up; then current
    assert asyncio.run(body()) == [(2, False), (1, True)]
    assert client.get(keys.applied(1)) == log_id


def test_catch_up_counts_events_trimmed_from_the_log(redis_url: str) -> None:
    store = RedisWeightStore(RedisStoreConfig(url=redis_url))
    client = redis.Redis.from_url(redis_url)
    keys = UserKeys.of(MODEL, "carol")
    ids = []
    for n in range(3):
        entry = {"event_id": f"e{n}", "user_id": "carol", "item_id": "i1", "reward": "1.0",
                 "timestamp": "1", "prediction_id": "", "propensity": ""}  # fmt: skip
        ids.append(client.xadd(keys.events, entry))  # type: ignore[arg-type]
    client.rpush(keys.recent, *ids)
    client.xtrim(keys.events, minid=ids[1], approximate=False)  # e0 is gone from the log
    start_cutoff = LogCutoff.start(LOG_PARTITIONS).positions[partition_of("carol")]

    async def body() -> tuple[list[str], int]:
        caught = await store.catch_up(MODEL, 1, "carol", start_cutoff)
        await store.close()
        return [logged.event.event_id for logged in caught.events], caught.missing

    assert asyncio.run(body()) == (["e1", "e2"], 1)
