"""/predict and /observe over a Redis Cluster against one Redis, in one run (loopback, wrk).

    python -m bench.bench_cluster [--seconds 5] [--connections 16] [--rounds 3]

Three `velox serve` processes (one uvicorn worker each) over the same movielens-100k-shaped
snapshot (1682 items, 943 users, d = 18, bench/service_fixture.py):

* single:  one redis-server on a loopback TCP port,
* cluster: a Redis Cluster of 3 masters + 3 replicas on loopback (tests/support/redis_cluster.py,
  Redis's default `cluster-node-timeout` of 15 s),
* cluster+WAIT: the same cluster with `VELOX_REDIS_WAIT_REPLICAS=1` (an /observe is answered
  only once its master's replica has it).

Every Redis node runs `appendonly yes`, `appendfsync everysec`. Each round runs every workload
(/observe at concurrency 1 and at `--connections`, then /predict k=10 over the users the
observes gave a state) on the three setups back to back; each run is compared with the
single-node run of the same workload and round, and the summary gives the median ratio over
rounds. "cpu us/req" is the service process's CPU per request, "redis us/req" that of every
Redis process of the setup (the cluster's six, replicas included). The cluster's nodes share
this machine's cores with the service and wrk; on separate hosts they would not.

First, the client side alone, in this process: CPU per `RedisWeightStore.read` (one round
trip) and per `observe` (two) with 50 calls in flight, over the same three setups, alternated
`--rounds` times; the least disturbed (smallest) figure of each is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.bench_service import (
    OBSERVE_LUA,
    PREDICT_LUA,
    Result,
    cpu_seconds,
    run_wrk,
    start_server,
    stop,
)
from bench.service_fixture import N_USERS, publish_bench_snapshot
from online.redis_store import RedisWeightStore
from online.weight_store import FeedbackEvent, RedisStoreConfig, StateChange
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import free_port, redis_binary


def single_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """One redis-server on a free loopback port (AOF everysec) and its URL."""
    port = free_port()
    process = subprocess.Popen(
        [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return process, f"redis://127.0.0.1:{port}/0"


def serve(home: Path, redis_url: str, **extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """`velox serve` over `redis_url` and the bench snapshot; its base URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VELOX_")}
    env.update(VELOX_HOME=str(home), VELOX_MODEL="movies", VELOX_REDIS_URL=redis_url, **extra)
    env["VELOX_SNAPSHOT_ROOT"] = str(home.parent / "snapshots")
    home.mkdir()
    port = free_port()
    command = [sys.executable, "-c", "from velox.cli import main; main()", "serve"]
    base = f"http://127.0.0.1:{port}"
    return start_server([*command, "--port", str(port)], env, base + "/readyz"), base


STORE_CALLS = 10_000
CLIENT_MODEL = "client-bench"
"""The store calls write opaque states under their own model, apart from the served one."""
IN_FLIGHT = 50


async def store_cpu(url: str, wait_replicas: int) -> tuple[float, float]:
    """Client CPU (us) per store read and per store observe, `IN_FLIGHT` calls at a time."""
    store = RedisWeightStore(RedisStoreConfig(url=url, wait_replicas=wait_replicas))
    users = [f"u{n}" for n in range(N_USERS)]
    run = uuid.uuid4().hex[:8]

    def observe(n: int) -> Awaitable[object]:
        event = FeedbackEvent(f"{run}-{n}", users[n % N_USERS], "i1", 1.0, 1_700_000_000_000_000)
        return store.observe(CLIENT_MODEL, 1, event, lambda old, _: StateChange(b"s" * 400))

    def read(n: int) -> Awaitable[object]:
        return store.read(CLIENT_MODEL, 1, users[n % N_USERS], with_seen=False)

    async def per_call(call: Callable[[int], Awaitable[object]]) -> float:
        started = time.process_time()
        for batch in range(0, STORE_CALLS, IN_FLIGHT):
            await asyncio.gather(*[call(batch + j) for j in range(IN_FLIGHT)])
        return (time.process_time() - started) / STORE_CALLS * 1e6

    try:
        await store.ping()
        return await per_call(read), await per_call(observe)
    finally:
        await store.close()


def main() -> None:
    """Start the three setups, run every workload on each, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_cluster needs wrk on the PATH (apt-get install wrk)")
    root = Path(tempfile.mkdtemp(prefix="velox-bench-cluster-"))
    publish_bench_snapshot(root)
    (root / "single").mkdir()
    redis_process, redis_url = single_redis(root / "single")
    cluster = RedisCluster(root / "cluster", appendfsync="everysec", node_timeout_ms=15_000)
    cluster.start()
    servers = []
    try:
        setups = (
            ("single", redis_url, 0),
            ("cluster", cluster.url, 0),
            ("cluster+WAIT", cluster.url, 1),
        )
        client: dict[str, list[tuple[float, float]]] = {}
        for _ in range(args.rounds):
            for setup, url, wait in setups:
                client.setdefault(setup, []).append(asyncio.run(store_cpu(url, wait)))
        print(f"client CPU per store call ({IN_FLIGHT} in flight, least of {args.rounds} rounds):")
        for setup, values in client.items():
            read, observe = min(v[0] for v in values), min(v[1] for v in values)
            print(f"  {setup:<13} read {read:5.1f} us   observe {observe:5.1f} us")
        servers = [
            ("single", *serve(root / "home-single", redis_url), [redis_process.pid]),
            ("cluster", *serve(root / "home-cluster", cluster.url), cluster.pids()),
            ("cluster+WAIT", *serve(root / "home-wait", cluster.url,
                                    VELOX_REDIS_WAIT_REPLICAS="1"), cluster.pids()),
        ]  # fmt: skip
        seconds, connections = args.seconds, args.connections
        workloads = (
            ("/observe", "/observe", 1, OBSERVE_LUA),
            ("/observe", "/observe", connections, OBSERVE_LUA),
            ("/predict k=10", "/predict", connections, PREDICT_LUA),
        )
        rounds = [
            [[measure(setup, name, base + path, seconds, conns, script, process.pid, redis)
              for setup, process, base, redis in servers]
             for name, path, conns, script in workloads]
            for _ in range(args.rounds)
        ]  # fmt: skip
    finally:
        for _, process, _, _ in servers:
            stop(process)
        cluster.stop()
        redis_process.terminate()
        redis_process.wait(timeout=30)
    print_table(rounds)


Run = tuple[str, Result, float, float]
"""(setup, wrk's result, service CPU us/request, Redis CPU us/request)."""


def measure(
    setup: str, name: str, url: str, seconds: int, connections: int, script: str,
    server: int, redis: list[int],
) -> Run:  # fmt: skip
    """One wrk run and the CPU the service and the setup's Redis processes spent on it."""
    before = cpu_seconds(server), sum(cpu_seconds(pid) for pid in redis)
    result = run_wrk(name, url, seconds, connections, script)
    after = cpu_seconds(server), sum(cpu_seconds(pid) for pid in redis)
    requests = result.requests_per_s * seconds
    cpu = [(a - b) / requests * 1e6 for a, b in zip(after, before, strict=True)]
    return setup, result, cpu[0], cpu[1]


def print_table(rounds: list[list[list[Run]]]) -> None:
    """Every run against its round's single-node run, then the median ratios."""
    print(f"{'round':<6}{'endpoint':<15}{'conns':>6}  {'setup':<14}{'req/s':>8}"
          f"{'vs single':>10}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>8}{'cpu us/req':>11}"
          f"{'redis us/req':>13}")  # fmt: skip
    ratios: dict[tuple[str, int, str], list[tuple[float, float, float, float]]] = {}
    for number, workloads in enumerate(rounds, start=1):
        for runs in workloads:
            base = runs[0][1]
            for setup, r, cpu, redis in runs:
                rate = r.requests_per_s / base.requests_per_s
                key = (r.name, r.connections, setup)
                ratios.setdefault(key, []).append((rate, r.p50_ms / base.p50_ms, cpu, redis))
                print(f"{number:<6}{r.name:<15}{r.connections:>6}  {setup:<14}"
                      f"{r.requests_per_s:>8.0f}{rate:>9.2f}x{r.p50_ms:>8.2f}{r.p99_ms:>8.2f}"
                      f"{r.errors:>8}{cpu:>11.0f}{redis:>13.0f}")  # fmt: skip
    print("\nmedian over rounds (each vs the single node in its own round):")
    for (name, connections, setup), values in ratios.items():
        rate, p50, cpu, redis = (statistics.median(v[i] for v in values) for i in range(4))
        print(
            f"  {name:<14} c={connections:<3} {setup:<13} throughput {rate:.2f}x  "
            f"p50 {p50:.2f}x  cpu {cpu:.0f} us/req  redis {redis:.0f} us/req"
        )


if __name__ == "__main__":
    main()
