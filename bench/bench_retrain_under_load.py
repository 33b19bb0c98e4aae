"""Steady /predict and /observe load while a full `velox retrain` cycle runs on movielens-100k.

    python -m bench.bench_retrain_under_load [--rate 40] [--before 20] [--after 10]
        [--concurrency 8] [--retrain-nice N] [--dataset-cache DIR]

Setup, all on loopback under a temporary VELOX_HOME: the embedded Redis (unix socket, AOF),
`velox train --dataset movielens-100k` (v1), `velox serve` (one uvicorn worker). A load
generator (asyncio + httpx, in this process) then sends a bounded, paced mix of
`GET /predict?user=U&k=10` (Thompson sampling) and `POST /observe` (a rating 1-5 of a random
item) at `--rate` requests/s over `--concurrency` connections: `--before` seconds of load
alone, then `velox retrain` (drain the log → Spark training on movielens + the drained events
→ evaluation → publish → promote) in a subprocess while the load goes on, then until the
service serves the new version, then `--after` seconds more. `--retrain-nice N` runs the
retrain at a lower CPU priority (`nice -n N`), as a deployment that colocates batch and
serving on one machine would.

Prints the cycle's wall time (the retrain process, Spark start-up included, and its stages),
the time until the service swapped, and per phase and request kind: requests, failures (any
non-200 or transport error), p50/p99 latency and p99 as a ratio of the same kind's p99 before
the cycle (the baseline measured in this run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from online.embedded_redis import EmbeddedRedis
from tests.support.redis_server import free_port

MODEL = "movies"
USERS, ITEMS = 943, 1682
VELOX = [sys.executable, "-c", "from velox.cli import main; main()"]


@dataclass(frozen=True)
class Sample:
    """One request: the phase it started in, its kind, latency, and whether it succeeded."""

    phase: str
    kind: str
    seconds: float
    ok: bool


class Load:
    """Paced requests from `concurrency` workers at `rate` requests/s in total, in a thread."""

    def __init__(self, url: str, rate: float, concurrency: int) -> None:
        self.url = url
        self.period = concurrency / rate
        self.concurrency = concurrency
        self.phase = "before"
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> None:
        """Start sending."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the requests in flight."""
        self._stop.set()
        self._thread.join()

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.url, timeout=10.0, limits=limits) as client:
            await asyncio.gather(*(self._worker(client, n) for n in range(self.concurrency)))

    async def _worker(self, client: httpx.AsyncClient, n: int) -> None:
        rng = random.Random(n)
        due = time.monotonic() + rng.random() * self.period
        while not self._stop.is_set():
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due += self.period
            phase, user = self.phase, str(rng.randint(1, USERS))
            kind = "predict" if rng.random() < 0.5 else "observe"
            started = time.perf_counter()
            try:
                if kind == "predict":
                    response = await client.get("/predict", params={"user": user, "k": 10})
                else:
                    item, reward = str(rng.randint(1, ITEMS)), rng.randint(1, 5)
                    body = {"user": user, "item": item, "reward": reward}
                    response = await client.post("/observe", json=body)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            self.samples.append(Sample(phase, kind, time.perf_counter() - started, ok))


def served_version(url: str) -> int | None:
    """The version the service serves, if it answers."""
    try:
        models = httpx.get(f"{url}/models", timeout=2.0).json()["models"]
    except (httpx.HTTPError, KeyError, ValueError):
        return None
    return int(models[0]["version"]) if models else None


def run(command: list[str], env: dict[str, str], log: Path) -> float:
    """Run a velox command to completion (output to `log`); its wall time in seconds."""
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{log.read_text()[-3000:]}")
    return time.perf_counter() - started


def table(samples: list[Sample]) -> list[str]:
    """Rows per phase and kind, p99 against the same kind's p99 before the cycle."""
    lines = [
        f"{'phase':<8} {'kind':<8} {'requests':>8} {'failed':>6} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p99 vs before':>13}"
    ]
    before: dict[str, float] = {}
    for phase in ("before", "during", "swap", "after"):
        for kind in ("predict", "observe"):
            mine = [s for s in samples if s.phase == phase and s.kind == kind]
            if not mine:
                continue
            latency = np.array([s.seconds for s in mine]) * 1000
            p50, p99 = np.percentile(latency, [50, 99])
            before.setdefault(kind, p99)
            failed = sum(not s.ok for s in mine)
            lines.append(
                f"{phase:<8} {kind:<8} {len(mine):>8} {failed:>6} {p50:>8.2f} {p99:>8.2f} "
                f"{p99 / before[kind]:>12.2f}x"
            )
    return lines


def main() -> None:
    """Set up, load, retrain, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=40.0, help="requests/s in total")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--before", type=float, default=20.0, help="seconds of load first")
    parser.add_argument("--after", type=float, default=10.0, help="seconds after the swap")
    parser.add_argument("--retrain-nice", type=int, default=0, help="niceness of the retrain")
    parser.add_argument("--dataset-cache", type=Path, default=Path.home() / ".velox" / "datasets")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="velox-retrain-"))
    if args.dataset_cache.is_dir():
        (home / "datasets").symlink_to(args.dataset_cache.resolve())
    with EmbeddedRedis(home / "redis") as redis_server:
        env = {**os.environ, "VELOX_HOME": str(home), "VELOX_REDIS_URL": redis_server.url}
        env.update(VELOX_MODEL=MODEL, VELOX_POLL_INTERVAL_S="0.5")
        train_s = run([*VELOX, "train", "--dataset", "movielens-100k"], env, home / "train.log")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with (home / "serve.log").open("w") as out:
            server = subprocess.Popen(
                [*VELOX, "serve", "--port", str(port)], env=env, stdout=out, stderr=out
            )
        try:
            while served_version(url) != 1:
                time.sleep(0.2)
            load = Load(url, args.rate, args.concurrency)
            load.start()
            time.sleep(args.before)
            load.phase = "during"
            nice = ["nice", "-n", str(args.retrain_nice)] if args.retrain_nice else []
            cycle_s = run([*nice, *VELOX, "retrain"], env, home / "retrain.log")
            load.phase = "swap"
            swap_started = time.perf_counter()
            while served_version(url) != 2:
                time.sleep(0.05)
            swap_s = time.perf_counter() - swap_started
            load.phase = "after"
            time.sleep(args.after)
            load.stop()
        finally:
            server.terminate()
            server.wait(timeout=30)
    retrain_log = (home / "retrain.log").read_text()
    stages = re.search(r"stages: (.*)", retrain_log)
    drained = re.search(r"drained (\d+) events", retrain_log)
    failed = sum(not s.ok for s in load.samples)
    print(f"initial velox train (movielens-100k): {train_s:.1f} s")
    print(
        f"velox retrain cycle wall time: {cycle_s:.1f} s (target <= 60 s; stages: "
        f"{stages.group(1) if stages else '?'}; {drained.group(1) if drained else '?'} events "
        f"drained); swap seen {swap_s:.2f} s after the cycle ended"
    )
    print(
        f"load: {args.rate:g} req/s over {args.concurrency} connections; retrain niceness "
        f"{args.retrain_nice}; failed requests: {failed}"
    )
    print("\n".join(table(load.samples)))


if __name__ == "__main__":
    main()
