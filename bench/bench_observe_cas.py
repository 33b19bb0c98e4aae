"""Atomic per-user updates under contention: WATCH/MULTI against a Lua compare-and-set.

    python -m bench.bench_observe_cas [--updates 3000] [--concurrency 32]

Every variant applies the same /observe work (decode the state, one posterior update at
d = 18, encode, write the state and append the event to the log) to an embedded Redis (unix
socket, AOF everysec), from `--concurrency` coroutines at once, over 1 hot user (every update
contends) and over 1000 users (little contention):

* `WATCH/MULTI (redis-py)`: WATCH, GET, then MULTI SET XADD EXEC; retry on WatchError
  (3 round trips, one pinned pool connection per update in flight);
* `Lua CAS (redis-py)`: GET, then the service's compare-and-set script by EVALSHA; a conflict
  returns the current value, so a retry costs one round trip (2 round trips);
* `Lua CAS (service store)`: `RedisWeightStore.observe`, two instances as two workers (the
  lean multiplexed client, per-user lock inside a process, the same script).

After each run the stored update count of every user is checked against the updates sent.
Prints throughput, latency percentiles and attempts per update, relative to WATCH/MULTI.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from online.embedded_redis import EmbeddedRedis
from online.redis_keys import UserKeys, online_error_key
from online.redis_store import HEADER, OBSERVE_SHA, RedisWeightStore
from online.weight_store import FeedbackEvent, RedisStoreConfig, StateChange
from velox.posterior import UserPosterior
from velox.state_codec import decode_state, encode_state

DIM = 18
FEATURES = np.random.default_rng(0).standard_normal((64, DIM)).astype(np.float32)
PRIOR = encode_state(UserPosterior.prior(np.zeros(DIM), 1.0))
Update = Callable[[str, int], Awaitable[int]]  # (user, event number) -> attempts


def apply(state: bytes | None, n: int) -> bytes:
    """The /observe math: decode (or prior), one update, encode."""
    posterior = decode_state(state if state is not None else PRIOR)
    posterior.update(FEATURES[n % len(FEATURES)], 1.0)
    return encode_state(posterior)


def event_fields(user: str, n: int) -> dict[str, str]:
    """The log entry of event n, in the events schema."""
    return {
        "event_id": f"e{n}", "user_id": user, "item_id": f"i{n % 64}", "reward": "1.0",
        "timestamp": str(time.time_ns() // 1000), "prediction_id": "", "propensity": "",
    }  # fmt: skip


def watch_multi(client: aioredis.Redis) -> Update:
    """Optimistic WATCH/MULTI transaction, retried on WatchError."""

    async def update(user: str, n: int) -> int:
        keys = UserKeys.of("watch", user)
        attempts = 0
        async with client.pipeline(transaction=True) as pipe:
            while True:
                attempts += 1
                try:
                    await pipe.watch(keys.state(1))
                    current = cast(bytes | None, await pipe.get(keys.state(1)))
                    state = apply(current[8:] if current else None, n)
                    sequence = HEADER.unpack(current[:8])[0] if current else 0
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(keys.state(1), HEADER.pack(sequence + 1) + state)
                    pipe.xadd(keys.events, event_fields(user, n))  # type: ignore[arg-type]
                    await pipe.execute()
                    return attempts
                except WatchError:
                    continue

    return update


def lua_cas(client: aioredis.Redis) -> Update:
    """GET, then the compare-and-set script; a conflict hands back the current value."""

    async def update(user: str, n: int) -> int:
        keys = UserKeys.of("lua", user)
        script_keys = [keys.state(1), keys.seen, keys.event_ids, keys.events, keys.recent]
        script_keys += [keys.applied(1), online_error_key("lua", keys.partition, 1)]
        pipe = client.pipeline(transaction=False)
        pipe.get(keys.state(1))
        pipe.lindex(keys.recent, -1)
        current, last = cast(tuple[bytes | None, bytes | None], await pipe.execute())
        attempts = 0
        while True:
            attempts += 1
            expected = current[:8] if current else b""
            sequence = HEADER.unpack(expected)[0] if current else 0
            value = HEADER.pack(sequence + 1) + apply(current[8:] if current else None, n)
            fields = event_fields(user, n)
            args: list[bytes | str | int] = [
                expected, value, fields["event_id"], user, fields["item_id"], "1.0",
                fields["timestamp"], "", "", 10_000, 100, last or b"", "",
            ]  # fmt: skip
            reply = await client.evalsha(OBSERVE_SHA, 7, *script_keys, *args)
            if reply[0] == b"ok":
                return attempts
            current, last = reply[1], reply[3]

    return update


def service_store(stores: list[RedisWeightStore]) -> Update:
    """`RedisWeightStore.observe`, alternating between instances (two workers)."""

    async def update(user: str, n: int) -> int:
        event = FeedbackEvent(f"e{n}", user, f"i{n % 64}", 1.0, time.time_ns() // 1000)
        outcome = await stores[n % len(stores)].observe(
            "store", 1, event, lambda state, _missed: StateChange(apply(state, n))
        )
        return outcome.attempts

    return update


@dataclass(frozen=True)
class Row:
    """One variant under one contention level."""

    variant: str
    users: int
    per_s: float
    p50_ms: float
    p99_ms: float
    attempts: float


async def drive(
    update: Update, users: int, total: int, concurrency: int
) -> tuple[float, list[float], int]:
    """Run `total` updates from `concurrency` coroutines; wall time, latencies, attempts."""
    rng = random.Random(7)
    plan = [(f"user{rng.randrange(users)}", n) for n in range(total)]
    latencies: list[float] = []
    attempts = 0

    async def worker(start: int) -> None:
        nonlocal attempts
        for user, n in plan[start::concurrency]:
            began = time.perf_counter()
            tries = await update(user, n)  # awaited first: `+=` would read `attempts` early
            attempts += tries
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*[worker(i) for i in range(concurrency)])
    return time.perf_counter() - began, latencies, attempts


async def check_counts(client: aioredis.Redis, model: str, users: int, total: int) -> None:
    """Every user's stored update count must equal the updates sent to it (no lost update)."""
    rng = random.Random(7)
    expected: dict[str, int] = {}
    for _ in range(total):
        user = f"user{rng.randrange(users)}"
        expected[user] = expected.get(user, 0) + 1
    for user, count in expected.items():
        stored = cast(bytes | None, await client.get(UserKeys.of(model, user).state(1)))
        assert stored is not None and decode_state(stored[8:]).count == count, (model, user)


async def run(args: argparse.Namespace, url: str) -> list[Row]:
    """Every variant at both contention levels."""
    client = aioredis.Redis.from_url(url, max_connections=args.concurrency + 4)
    await client.script_load(Path(__file__).parents[1].joinpath("online/observe.lua").read_text())
    config = RedisStoreConfig(url=url)
    stores = [RedisWeightStore(config), RedisWeightStore(config)]
    variants: list[tuple[str, str, Update]] = [
        ("WATCH/MULTI (redis-py)", "watch", watch_multi(client)),
        ("Lua CAS (redis-py)", "lua", lua_cas(client)),
        ("Lua CAS (service store)", "store", service_store(stores)),
    ]
    rows = []
    for users in (1, 1000):
        for name, model, update in variants:
            await client.flushall()
            wall, latencies, attempts = await drive(update, users, args.updates, args.concurrency)
            await check_counts(client, model, users, args.updates)
            p50, p99 = np.percentile(np.array(latencies) * 1e3, [50, 99])
            rows.append(Row(name, users, args.updates / wall, p50, p99, attempts / args.updates))
    for store in stores:
        await store.close()
    await client.aclose()
    return rows


def main() -> None:
    """Start the embedded Redis, run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with EmbeddedRedis(Path(tempfile.mkdtemp(prefix="velox-cas-"))) as server:
        rows = asyncio.run(run(args, server.url))
    baseline = {row.users: row.per_s for row in rows if row.variant.startswith("WATCH")}
    print(f"{'variant':<26}{'users':>6}{'updates/s':>11}{'vs WATCH':>10}{'p50 ms':>8}"
          f"{'p99 ms':>8}{'attempts':>10}")  # fmt: skip
    for r in rows:
        print(f"{r.variant:<26}{r.users:>6}{r.per_s:>11.0f}{r.per_s / baseline[r.users]:>9.2f}x"
              f"{r.p50_ms:>8.2f}{r.p99_ms:>8.2f}{r.attempts:>10.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
