"""Failover under /observe load: acknowledged, lost, duplicated, time to recover, in one run.

    python -m bench.bench_failover [--users 8] [--per-user 60]

`users x per-user` observations with distinct event ids go to one `velox serve` (one worker)
from 8 concurrent clients, each retrying an event with the same id (every 50 ms) until it is
answered 200. Once a third is acknowledged, a Redis process is SIGKILLed:

* cluster, WAIT 0 / WAIT 1: the master owning the first user's slot of a 3 + 3 Redis Cluster
  (loopback, `cluster-node-timeout` 1 s, AOF always); its replica is promoted, then the killed
  node is restarted and rejoins as the replica. With `VELOX_REDIS_WAIT_REPLICAS=1` an
  /observe is answered only once the replica has it.
* single, AOF always: one redis-server, restarted from its AOF after 2.5 s.

Afterwards the feedback log is read back: "lost" counts acknowledged event ids missing from it,
"duplicated" those in it more than once. "recovered after" is the time from the kill to the
last failed client attempt; "failed tries" counts the attempts from the kill on answered with
an error (503 once the service's own retries, about 1.6 s, are spent) or not at all (5 s
client timeout). Latency percentiles are over the acknowledged calls (the successful attempt
only).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from batch.redis_client import redis_client
from online.redis_keys import UserKeys
from tests.online.live_server import LiveServer
from tests.online.synthetic import publish, synthetic_snapshot
from tests.support.observe_load import (
    Audit,
    Event,
    LoadResult,
    logged_event_ids,
    planned_events,
    run_load,
)
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer

Events = dict[str, Event]


def measure(
    home: Path, redis_url: str, fault: Callable[[], None], events: Events, **env: str
) -> tuple[Audit, LoadResult]:
    """Serve, load, inject `fault` a third of the way through, audit the log."""
    home.mkdir(parents=True)
    base = {"VELOX_REDIS_URL": redis_url, "VELOX_SNAPSHOT_ROOT": str(home.parent / "snapshots")}
    live = LiveServer(home, {**base, "VELOX_MODEL": "movies", **env})
    live.start()
    result = LoadResult()
    try:
        thread = threading.Thread(target=lambda: asyncio.run(run_load(live.url, events, result)))
        thread.start()
        while len(result.acknowledged) < len(events) // 3 and thread.is_alive():
            time.sleep(0.01)
        killed_at = time.monotonic()
        fault()
        thread.join(timeout=300)
    finally:
        live.stop()
    return Audit.of(result, logged_event_ids(redis_client(redis_url), "movies"), killed_at), result


def cluster_run(root: Path, wait: int, events: Events) -> Audit:
    """Kill the master of the first user's slot under load; the old master rejoins."""
    cluster = RedisCluster(root / f"cluster-wait{wait}")
    cluster.start()
    first_user = next(iter(events.values()))[0]
    victim = cluster.master_of(UserKeys.of("movies", first_user).state(1))
    replica = cluster.replica_of(victim)

    def fault() -> None:
        cluster.kill(victim)
        deadline = time.monotonic() + 30
        while replica not in cluster.master_ports() and time.monotonic() < deadline:
            time.sleep(0.05)
        cluster.start_node(victim)
        cluster.wait_ok()

    try:
        home = root / f"home-wait{wait}"
        audit, result = measure(home, cluster.url, fault, events,
                                VELOX_REDIS_WAIT_REPLICAS=str(wait))  # fmt: skip
    finally:
        cluster.stop()
    report(f"cluster, WAIT {wait}", audit, result)
    return audit


def single_run(root: Path, events: Events) -> Audit:
    """Kill one redis-server under load and restart it from its AOF 2.5 s later."""
    server = RedisServer(root / "single", appendonly=True)
    server.start()

    def fault() -> None:
        server.kill()
        time.sleep(2.5)
        server.start()

    try:
        audit, result = measure(root / "home-single", server.url, fault, events)
    finally:
        server.stop()
    report("single, AOF always", audit, result)
    return audit


def report(name: str, audit: Audit, result: LoadResult) -> None:
    """One row of the table."""
    cuts = statistics.quantiles(result.latencies_s, n=100)
    print(f"{name:<20}{audit.acknowledged:>8}{audit.lost:>6}{audit.duplicated:>12}"
          f"{audit.failed_attempts:>14}{audit.outage_s:>19.2f}"
          f"{cuts[49] * 1e3:>9.2f}{cuts[98] * 1e3:>9.2f}")  # fmt: skip


def main() -> None:
    """Run the three scenarios and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--per-user", type=int, default=60)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="velox-bench-failover-"))
    publish(str(root / "snapshots"), "movies", synthetic_snapshot())
    print(f"{'setup':<20}{'acked':>8}{'lost':>6}{'duplicated':>12}{'failed tries':>14}"
          f"{'recovered after s':>19}{'p50 ms':>9}{'p99 ms':>9}")  # fmt: skip
    cluster_run(root, 0, planned_events(args.users, args.per_user, 40, seed=1))
    cluster_run(root, 1, planned_events(args.users, args.per_user, 40, seed=2))
    single_run(root, planned_events(args.users, args.per_user, 40, seed=3))


if __name__ == "__main__":
    main()
