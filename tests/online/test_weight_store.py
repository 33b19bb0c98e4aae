"""Contract suite of the weight store, run against every backend (Redis: a real server)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import pytest
import redis

from batch.events_schema import events_table_from_stream_entries
from online.redis_keys import LOG_PARTITIONS, UserKeys, online_error_key, partition_of
from online.redis_store import HEADER, OBSERVE_SCRIPT, RedisWeightStore
from online.weight_store import (
    Decision,
    FeedbackEvent,
    LoggedEvent,
    ObserveStatus,
    RedisStoreConfig,
    StateChange,
    StateUpdate,
    WeightStore,
    open_store,
)

T = TypeVar("T")
StoreFactory = Callable[[], WeightStore]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine on a fresh event loop."""
    return asyncio.run(coroutine)


@pytest.fixture(params=["redis"])
def make_store(request: pytest.FixtureRequest, redis_url: str) -> StoreFactory:
    """A factory of stores of one backend (every backend runs the whole suite)."""
    configs = {"redis": RedisStoreConfig(url=redis_url, recent_events=5, dedupe_window=50)}
    config = configs[request.param]
    return lambda: open_store(config)


def event(n: int, user: str = "alice", item: str = "i1", reward: float = 1.0) -> FeedbackEvent:
    """A feedback event numbered n."""
    return FeedbackEvent(f"e{n}", user, item, reward, 1_700_000_000_000_000 + n)


def decision(prediction_id: str, items: list[str], propensities: list[float]) -> Decision:
    """A /predict answer shown to alice."""
    return Decision(prediction_id, "alice", 1, "thompson", 5, items, propensities)


def appending(tag: bytes) -> StateUpdate:
    """An update that appends `tag` to the state: the final state shows the order applied."""
    return lambda old, _missed: StateChange((old or b"") + tag + b";")


async def using(make: StoreFactory, body: Callable[[WeightStore], Awaitable[T]]) -> T:
    """Run `body` with a fresh store and close it afterwards."""
    store = make()
    try:
        return await body(store)
    finally:
        await store.close()


def test_unknown_user_has_no_state_and_nothing_seen(make_store: StoreFactory) -> None:
    async def body(store: WeightStore) -> None:
        read = await store.read("m", 1, "nobody", with_seen=True)
        assert read.state is None
        assert list(read.seen) == []

    run(using(make_store, body))


def test_observe_applies_updates_in_sequence(make_store: StoreFactory) -> None:
    async def body(store: WeightStore) -> None:
        first = await store.observe("m", 1, event(1), appending(b"a"))
        second = await store.observe("m", 1, event(2, item="i2"), appending(b"b"))
        assert first.status is second.status is ObserveStatus.APPLIED
        assert second.state == b"a;b;"
        read = await store.read("m", 1, "alice", with_seen=True)
        assert read.state == b"a;b;"
        assert sorted(read.seen) == [b"i1", b"i2"]
        assert (await store.read("m", 2, "alice", with_seen=False)).state is None

    run(using(make_store, body))


def test_repeated_event_id_changes_nothing(make_store: StoreFactory) -> None:
    def never(_: bytes | None, __: Sequence[LoggedEvent]) -> StateChange:
        raise AssertionError("a duplicate must not be applied")

    async def body(store: WeightStore) -> None:
        await store.observe("m", 1, event(1), appending(b"a"))
        again = await store.observe("m", 1, event(1), never)
        assert again.status is ObserveStatus.DUPLICATE
        assert (await store.read("m", 1, "alice", with_seen=False)).state == b"a;"
        assert len(await store.recent_events("m", "alice")) == 1

    run(using(make_store, body))


def test_failed_update_writes_nothing(make_store: StoreFactory) -> None:
    def broken(_: bytes | None, __: Sequence[LoggedEvent]) -> StateChange:
        raise ValueError("bad state")

    async def body(store: WeightStore) -> None:
        with pytest.raises(ValueError, match="bad state"):
            await store.observe("m", 1, event(1), broken)
        assert (await store.read("m", 1, "alice", with_seen=True)).state is None
        assert await store.recent_events("m", "alice") == []

    run(using(make_store, body))


def test_concurrent_observes_from_two_processes_apply_each_event_once(
    make_store: StoreFactory,
) -> None:
    count = 60

    async def body() -> bytes | None:
        # Two stores = two connections and two lock tables, like two uvicorn workers.
        stores = [make_store(), make_store()]
        try:
            await asyncio.gather(
                *[
                    stores[n % 2].observe("m", 1, event(n), appending(b"%d" % n))
                    for n in range(count)
                ]
            )
            return (await stores[0].read("m", 1, "alice", with_seen=False)).state
        finally:
            for store in stores:
                await store.close()

    state = run(body())
    assert state is not None
    applied = state.rstrip(b";").split(b";")
    assert sorted(applied, key=int) == [b"%d" % n for n in range(count)]


def test_round_trips_stay_within_budget(redis_url: str) -> None:
    store = RedisWeightStore(RedisStoreConfig(url=redis_url))

    async def trips(call: Coroutine[Any, Any, object]) -> int:
        before = store.client.round_trips
        await call
        return store.client.round_trips - before

    async def body() -> list[int]:
        await store.client.execute("SCRIPT", "LOAD", OBSERVE_SCRIPT)
        counts = [
            await trips(store.read("m", 1, "alice", with_seen=True)),
            await trips(store.observe("m", 1, event(1), appending(b"a"))),
            await trips(store.observe("m", 1, event(2), appending(b"b"))),
            await trips(store.observe("m", 1, event(2), appending(b"b"))),
        ]
        store.log_decision("m", decision("p", ["i1"], [1.0]))
        counts.append(await trips(store.read("m", 1, "alice", with_seen=False)))
        await store.close()
        return counts

    # read, first observe, second observe, duplicate, read after a queued prediction log
    assert run(body()) == [1, 2, 2, 1, 1]


def test_log_entries_follow_the_events_schema(make_store: StoreFactory, redis_url: str) -> None:
    async def body(store: WeightStore) -> None:
        await store.read("m", 1, "alice", with_seen=False)  # as /predict does, before logging
        store.log_decision("m", decision("p1", ["i1", "i2"], [0.25, 0.75]))
        await store.observe("m", 1, event(1, item="i2", reward=-0.5), appending(b"a"))
        logged = FeedbackEvent("e2", "alice", "i1", 2.0, 7, prediction_id="p1")
        outcome = await store.observe("m", 1, logged, appending(b"b"))
        assert outcome.propensity == 0.25

    run(using(make_store, body))
    stream = UserKeys.of("m", "alice").events
    entries = redis.Redis.from_url(redis_url).xrange(stream)
    table = events_table_from_stream_entries(entries).to_pylist()  # type: ignore[arg-type]
    assert [row["event_id"] for row in table] == ["e1", "e2"]
    assert table[0]["reward"] == -0.5
    assert table[0]["prediction_id"] is None
    assert table[0]["propensity"] is None
    assert table[1]["prediction_id"] == "p1"
    assert table[1]["propensity"] == 0.25
    assert table[1]["timestamp"].timestamp() == pytest.approx(7e-6)


def test_recent_events_are_kept_in_order_and_bounded(make_store: StoreFactory) -> None:
    async def body(store: WeightStore) -> None:
        for n in range(8):
            await store.observe("m", 1, event(n, reward=float(n)), appending(b"x"))
        recent = await store.recent_events("m", "alice")
        assert [logged.event.event_id for logged in recent] == ["e3", "e4", "e5", "e6", "e7"]
        assert [logged.event.reward for logged in recent] == [3.0, 4.0, 5.0, 6.0, 7.0]
        assert [logged.log_id for logged in recent] == sorted(
            (logged.log_id for logged in recent), key=lambda i: tuple(map(int, i.split("-")))
        )

    run(using(make_store, body))


def test_stale_compare_and_set_never_overwrites_newer_state(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = UserKeys.of("m", "alice")
    script_keys = [keys.state(1), keys.seen, keys.event_ids, keys.events, keys.recent]
    script_keys += [keys.applied(1), online_error_key("m", keys.partition, 1)]

    def cas(expected: bytes, value: bytes, event_id: str, last: bytes = b"") -> Any:
        args: list[bytes | str | int] = [expected, value, event_id, "alice", "i1", "1.0", "1"]
        args += ["", "", 10, 10, last, ""]
        return client.eval(OBSERVE_SCRIPT.decode(), 7, *script_keys, *args)

    newer = HEADER.pack(2) + b"newer"
    first = cas(b"", HEADER.pack(1) + b"first", "e1")
    assert first[0] == b"ok"
    second = cas(HEADER.pack(1), newer, "e2", last=first[1])
    assert second[0] == b"ok"
    reply = cas(HEADER.pack(1), HEADER.pack(2) + b"stale", "e3", last=first[1])
    assert reply == [b"conflict", newer, second[1], second[1]]
    stale_log = cas(HEADER.pack(2), HEADER.pack(3) + b"behind", "e4", last=first[1])
    assert stale_log == [b"conflict", newer, second[1], second[1]]
    assert client.get(keys.state(1)) == newer
    assert client.xlen(keys.events) == 2


def test_user_keys_share_one_cluster_slot() -> None:
    from redis.crc import key_slot

    keys = UserKeys.of("movies", "user:{42}")
    slots = {
        key_slot(key.encode())
        for key in (keys.state(3), keys.seen, keys.event_ids, keys.recent, keys.events)
    }
    assert len(slots) == 1
    assert 0 <= partition_of("user:{42}") < LOG_PARTITIONS
    assert UserKeys.of("m", "a:v1").state(2) != UserKeys.of("m", "a").state(1)


def test_store_survives_a_redis_restart(tmp_path: Any) -> None:
    from tests.support.redis_server import RedisServer

    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    store = RedisWeightStore(RedisStoreConfig(url=server.url, timeout_s=1.0, retries=6))

    async def body() -> bytes | None:
        await store.observe("m", 1, event(1), appending(b"a"))
        server.stop()
        server.start()
        await store.observe("m", 1, event(2), appending(b"b"))
        return (await store.read("m", 1, "alice", with_seen=False)).state

    try:
        assert run(body()) == b"a;b;"
    finally:
        server.stop()


def test_default_rewards_are_owed_once_the_window_closes_and_skip_rewarded_items(
    make_store: StoreFactory,
) -> None:
    shown = Decision(
        "p1", "alice", 1, "thompson", 5_000_000, ["i1", "i2"], [0.5, 0.25],
        candidates=2, window_s=60, default_reward=0.0,
    )  # fmt: skip

    async def body(store: WeightStore) -> None:
        assert await store.ping()  # connected: log_decision sends nothing before that
        store.log_decision("m", shown)
        close_ms = 5_000 + 60_000
        assert await store.ping()  # the decision went out with this round trip
        assert await store.due_rewards("m", close_ms - 1, 10) == []
        (due,) = await store.due_rewards("m", close_ms, 10)
        assert (due.prediction_id, due.user, list(due.items)) == ("p1", "alice", ["i1", "i2"])
        assert (list(due.propensities), due.default_reward) == ([0.5, 0.25], 0.0)
        # i1 got a reward in its window (joined); its default reward is then refused.
        joined = FeedbackEvent("e1", "alice", "i1", 1.0, 6, prediction_id="p1")
        outcome = await store.observe("m", 1, joined, appending(b"r"), window_s=60)
        assert outcome.status is ObserveStatus.APPLIED and outcome.propensity == 0.5
        statuses = []
        for slot, item in enumerate(due.items):
            default = FeedbackEvent(
                f"default:p1:{slot}", "alice", item, 0.0, 7, "p1", due.propensities[slot]
            )
            first = await store.observe("m", 1, default, appending(item.encode()), window_s=60)
            again = await store.observe("m", 1, default, appending(b"x"), window_s=60)
            statuses.append((first.status, again.status))
        assert statuses == [
            (ObserveStatus.REWARDED, ObserveStatus.REWARDED),
            (ObserveStatus.APPLIED, ObserveStatus.DUPLICATE),
        ]
        await store.settle_reward("m", due)
        await store.settle_reward("m", due)  # a second worker's settle changes nothing
        assert await store.due_rewards("m", close_ms + 10_000, 10) == []
        read = await store.read("m", 1, "alice", with_seen=False)
        assert read.state == b"r;i2;"

    run(using(make_store, body))
