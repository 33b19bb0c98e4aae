"""The cluster side of the lean RESP client: URLs, slots, and routing on a real Redis Cluster
(a pipeline over many slots fans out and keeps its order; a keyless WAIT rides with the command
before it; a multi-key read during a slot migration is answered after TRYAGAIN)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from online.redis_keys import LOG_PARTITIONS, events_key
from online.resp_client import Command
from online.store.cluster_client import ClusterClient
from online.store.slots import key_of, slot_of
from tests.support.redis_cluster import RedisCluster
from velox.errors import InvalidInputError
from velox.redis_url import ClusterUrl


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """One cluster for the module."""
    nodes = RedisCluster(tmp_path_factory.mktemp("cluster"))
    nodes.start()
    yield nodes
    nodes.stop()


def test_cluster_urls_are_parsed() -> None:
    parsed = ClusterUrl.parse("rediss+cluster://bob:s%40cret@10.0.0.1:7000,[::1]:7001,cache")
    assert parsed == ClusterUrl(
        nodes=(("10.0.0.1", 7000), ("::1", 7001), ("cache", 6379)),
        username="bob",
        password="s@cret",  # noqa: S106
        tls=True,
    )
    for bad in ("redis+cluster://", "redis+cluster://h:0", "redis+cluster://h:1/2", "redis://h"):
        with pytest.raises(InvalidInputError):
            ClusterUrl.parse(bad)


@given(st.binary(max_size=24) | st.text(max_size=24))
def test_slots_agree_with_redis_py(key: bytes | str) -> None:
    raw = key.encode() if isinstance(key, str) else key
    assert slot_of(key) == key_slot(raw)


def test_keys_of_commands() -> None:
    assert key_of(("EVALSHA", "sha", 2, "k1", "k2", "arg")) == "k1"
    assert key_of(("EVAL", "return 1", 0)) is None
    assert key_of(("WAIT", 1, 100)) is None
    assert key_of(("get", "k")) == "k"


def run(cluster: RedisCluster, commands: list[Command]) -> list[object]:
    """One pipeline through a fresh client."""

    async def body() -> list[object]:
        client = ClusterClient(ClusterUrl.parse(cluster.url))
        try:
            return await client.pipeline(commands)
        finally:
            await client.close()

    return asyncio.run(body())


def test_a_pipeline_over_every_partition_fans_out_in_order(cluster: RedisCluster) -> None:
    keys = [events_key("m", p) for p in range(LOG_PARTITIONS)]
    assert len({cluster.master_of(key) for key in keys}) == 3
    writes: list[Command] = [("SET", key, str(n)) for n, key in enumerate(keys)]
    reads: list[Command] = [("GET", key) for key in keys]
    assert run(cluster, [*writes, *reads]) == [b"OK"] * len(keys) + [
        str(n).encode() for n in range(len(keys))
    ]


def test_a_keyless_wait_goes_to_the_node_of_the_command_before_it(cluster: RedisCluster) -> None:
    replies = run(cluster, [("SET", "{w}k", "1"), ("WAIT", 1, 1000)])
    assert replies == [b"OK", 1]  # the replica of that master acknowledged the write


def test_a_multi_key_read_during_a_migration_is_answered_after_it(cluster: RedisCluster) -> None:
    keys = ("{mig}a", "{mig}b")
    run(cluster, [("SET", keys[0], "1"), ("SET", keys[1], "2")])
    source = cluster.master_of(keys[0])
    target = next(port for port in cluster.master_ports() if port != source)
    slot = slot_of(keys[0])
    source_node = cluster.node(source)
    ids = {node.port: node.node_id for node in cluster.nodes()}
    cluster.node(target).execute_command(  # type: ignore[no-untyped-call]
        "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source]
    )
    source_node.execute_command(  # type: ignore[no-untyped-call]
        "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target]
    )
    source_node.execute_command(  # type: ignore[no-untyped-call]
        "MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", keys[0]
    )
    # One key moved, one not: MGET is refused with TRYAGAIN until the migration ends.
    finish = threading.Timer(0.3, lambda: cluster.migrate_slot(slot, source, target))
    finish.start()
    try:
        assert run(cluster, [("MGET", *keys)]) == [[b"1", b"2"]]
    finally:
        finish.join()
    assert cluster.master_of(keys[0]) == target


def test_an_unreachable_cluster_is_said_in_one_line(tmp_path: Path) -> None:
    from tests.support.redis_server import free_port

    port = free_port()

    async def body() -> str | None:
        client = ClusterClient(ClusterUrl.parse(f"redis+cluster://127.0.0.1:{port}"))
        try:
            return await client.unavailable()
        finally:
            await client.close()

    problem = asyncio.run(body())
    assert problem is not None and problem.startswith(f"Redis Cluster 127.0.0.1:{port}")
    assert "\n" not in problem


def test_wait_replicas_acknowledge_only_replicated_observes(cluster: RedisCluster) -> None:
    from online.errors import NotReplicatedError
    from online.redis_store import RedisWeightStore
    from online.weight_store import FeedbackEvent, ObserveStatus, RedisStoreConfig, StateChange

    def update(old: bytes | None, _: object) -> StateChange:
        return StateChange((old or b"") + b"x")

    event = FeedbackEvent("w1", "waiter", "i1", 1.0, 1_700_000_000_000_000)

    async def body() -> list[object]:
        seen: list[object] = []
        for wanted in (2, 1):  # each master has one replica: 2 cannot be met, 1 can
            # 2 replicas time out at once; 1 gets time to answer on a loaded machine.
            timeout_ms = 50 if wanted == 2 else 5000
            config = RedisStoreConfig(
                url=cluster.url, wait_replicas=wanted, wait_timeout_ms=timeout_ms
            )
            store = RedisWeightStore(config)
            try:
                for _ in range(2):  # the first call applies, the second finds it applied
                    try:
                        seen.append((await store.observe("w", 1, event, update)).status)
                    except NotReplicatedError:
                        seen.append("not replicated")
                seen.append((await store.read("w", 1, "waiter", with_seen=False)).state)
            finally:
                await store.close()
        return seen

    assert asyncio.run(body()) == [
        "not replicated", "not replicated", b"x",  # written once, never acknowledged
        ObserveStatus.DUPLICATE, ObserveStatus.DUPLICATE, b"x",  # now confirmed, still once
    ]  # fmt: skip
