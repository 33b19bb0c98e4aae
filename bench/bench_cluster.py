"""/predict and /observe over a Redis Cluster against one Redis, in one run (loopback, wrk).

    python -m bench.bench_cluster [--seconds 5] [--connections 16]

Three `velox serve` processes (one uvicorn worker each) over the same movielens-100k-shaped
snapshot (1682 items, 943 users, d = 18, bench/service_fixture.py):

* single:  one redis-server on a loopback TCP port,
* cluster: a Redis Cluster of 3 masters + 3 replicas on loopback (tests/support/redis_cluster.py),
* cluster+WAIT: the same cluster with `VELOX_REDIS_WAIT_REPLICAS=1` (an /observe is answered
  only once its master's replica has it).

Every Redis node runs `appendonly yes`, `appendfsync everysec`. For each workload (/observe at
concurrency 1 and at `--connections`, then /predict k=10 over the users the observes gave a
state) the three setups run back to back, and each row is compared with the single-node run
of the same workload. The cluster's six nodes share this machine's cores with the service and
wrk, so the cluster rows include that contention; on separate hosts it would not.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.bench_service import OBSERVE_LUA, PREDICT_LUA, Result, run_wrk, start_server, stop
from bench.service_fixture import publish_bench_snapshot
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


def main() -> None:
    """Start the three setups, run every workload on each, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_cluster needs wrk on the PATH (apt-get install wrk)")
    root = Path(tempfile.mkdtemp(prefix="velox-bench-cluster-"))
    publish_bench_snapshot(root)
    (root / "single").mkdir()
    redis_process, redis_url = single_redis(root / "single")
    cluster = RedisCluster(root / "cluster", appendfsync="everysec")
    cluster.start()
    servers = []
    try:
        servers = [
            ("single", *serve(root / "home-single", redis_url)),
            ("cluster", *serve(root / "home-cluster", cluster.url)),
            ("cluster+WAIT", *serve(root / "home-wait", cluster.url,
                                    VELOX_REDIS_WAIT_REPLICAS="1")),
        ]  # fmt: skip
        seconds, connections = args.seconds, args.connections
        workloads = (
            ("/observe", "/observe", 1, OBSERVE_LUA),
            ("/observe", "/observe", connections, OBSERVE_LUA),
            ("/predict k=10", "/predict", connections, PREDICT_LUA),
        )
        table = [
            [(setup, run_wrk(name, base + path, seconds, conns, script))
             for setup, _, base in servers]
            for name, path, conns, script in workloads
        ]  # fmt: skip
    finally:
        for _, process, _ in servers:
            stop(process)
        cluster.stop()
        redis_process.terminate()
        redis_process.wait(timeout=30)
    print_table(table)


def print_table(table: list[list[tuple[str, Result]]]) -> None:
    """One row per workload and setup, throughput and p50 against the single node's."""
    print(f"{'endpoint':<15}{'conns':>6}  {'setup':<14}{'req/s':>8}{'vs single':>10}"
          f"{'p50 ms':>8}{'p50 vs single':>14}{'p99 ms':>8}{'non-2xx':>8}")  # fmt: skip
    for runs in table:
        base = runs[0][1]
        for setup, r in runs:
            print(f"{r.name:<15}{r.connections:>6}  {setup:<14}{r.requests_per_s:>8.0f}"
                  f"{r.requests_per_s / base.requests_per_s:>9.2f}x{r.p50_ms:>8.2f}"
                  f"{r.p50_ms / base.p50_ms:>13.2f}x{r.p99_ms:>8.2f}{r.errors:>8}")  # fmt: skip


if __name__ == "__main__":
    main()
