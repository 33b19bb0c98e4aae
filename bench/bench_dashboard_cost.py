"""What an open dashboard costs /predict: throughput with and without it, in one run.

    python -m bench.bench_dashboard_cost [--seconds 20] [--connections 16] [--rounds 3]

One `velox serve` worker over the movielens-100k-shaped bench snapshot (1682 items, d = 18)
and the embedded Redis. First ~600 /predict + /observe rounds with joined rewards fill the
decision and feedback logs (so the learning and OPE panels have real work to do). Then
`--rounds` rounds each run `wrk` on `GET /predict?user=U&k=10` (Thompson sampling) twice,
alternating the order: once alone, once while a poller does exactly what an open page does
(every panel's data endpoint at the panel's refresh period, the OPE panel for the served
policy and each candidate). Each round's "open" run is compared with its own "closed" run.
"cpu us/req" is the server's CPU time per /predict (what the dashboard's requests add shows
up there too). Then the server's CPU time per second with a page open and no other load (31 s:
one OPE refresh) against idle, and last the in-process cost of the wrapper that times the hot
routes for the traffic panel (paid whether or not a page is open). Needs `wrk`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench.bench_service import PREDICT_LUA, Result, cpu_seconds, measured, start_server, stop
from bench.service_fixture import N_USERS, publish_bench_snapshot
from tests.support.redis_server import free_port

WARMUP_ROUNDS = 600


class PagePoller:
    """Polls the dashboard's data endpoints as an open page does, in a thread."""

    def __init__(self, base: str) -> None:
        """Poll the service at `base` once started."""
        self.base = base
        self.requests = 0
        self.failures = 0
        self.ope_seconds: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PagePoller:
        """Start polling."""
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        """Stop polling and wait for the poller."""
        self._stop.set()
        self._thread.join(timeout=60)

    def _get(self, http: httpx.Client, path: str, **params: str) -> None:
        self.requests += 1
        response = http.get(path, params=params)
        if response.status_code != 200:
            self.failures += 1
        elif path.endswith("/ope"):
            self.ope_seconds.append(response.json()["compute_s"])

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=60.0) as http:
            info = http.get("/dashboard/data/panels").json()
            http.get("/dashboard")
            due = {panel["data_path"]: 0.0 for panel in info["panels"]}
            period = {panel["data_path"]: panel["refresh_s"] for panel in info["panels"]}
            while not self._stop.is_set():
                now = time.monotonic()
                for path, when in due.items():
                    if when > now:
                        continue
                    self._get(http, path)
                    if path.endswith("/ope"):
                        for policy in info["ope_policies"]:
                            self._get(http, path, policy=policy)
                    due[path] = time.monotonic() + period[path]
                self._stop.wait(max(0.0, min(due.values()) - time.monotonic()))


def warm_up(base: str) -> None:
    """Answered and rewarded /predicts, so the logs hold joined decisions."""
    with httpx.Client(base_url=base, timeout=10.0) as http:
        for n in range(WARMUP_ROUNDS):
            user = f"u{n % N_USERS}"
            answer = http.get("/predict", params={"user": user, "k": 5}).json()
            body = {"user": user, "item": answer["items"][n % 5]["item"], "reward": float(n % 5),
                    "prediction_id": answer["prediction_id"]}  # fmt: skip
            http.post("/observe", json=body).raise_for_status()


def wrapper_cost_us(calls: int = 200_000, repeats: int = 5) -> float:
    """Median extra µs per call that `TrafficMonitor.timed` adds to a trivial endpoint
    (in-process; plain and timed calls interleaved)."""
    from fastapi import Request, Response

    from online.dashboard.traffic import TrafficMonitor

    response = Response(b"")

    async def endpoint(_: Request) -> Response:
        return response

    monitor = TrafficMonitor()
    timed = monitor.timed({("GET", "/predict"): endpoint})[("GET", "/predict")]
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})

    async def loop(function: Callable[[Request], Awaitable[Response]]) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            await function(request)
        return time.perf_counter() - start

    extra = []
    for _ in range(repeats):
        plain, wrapped = asyncio.run(loop(endpoint)), asyncio.run(loop(timed))
        monitor.tick(1.0, {}, None)  # drain the samples, as the sampler does
        extra.append((wrapped - plain) / calls * 1e6)
    return statistics.median(extra)


def page_cpu_share(base: str, pid: int, seconds: float) -> tuple[float, float]:
    """The server's CPU seconds per second, idle and then with a page open (no other load)."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    idle = (cpu_seconds(pid) - before) / seconds
    with PagePoller(base):
        before = cpu_seconds(pid)
        time.sleep(seconds)
        opened = (cpu_seconds(pid) - before) / seconds
    return idle, opened


def main() -> None:
    """Warm up, alternate closed/open runs, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_dashboard_cost needs wrk on the PATH (apt-get install wrk)")
    home = Path(tempfile.mkdtemp(prefix="velox-bench-dashboard-"))
    publish_bench_snapshot(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VELOX_")}
    env.update(VELOX_HOME=str(home), VELOX_MODEL="movies")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(
        [sys.executable, "-c", "from velox.cli import main; main()", "serve", "--port", str(port)],
        env, base + "/readyz",
    )  # fmt: skip
    rounds: list[tuple[Result, Result, PagePoller]] = []
    try:
        warm_up(base)
        for index in range(args.rounds):
            run, poller = {}, PagePoller(base)
            for open_page in (index % 2 == 1, index % 2 == 0):
                name = "dashboard open" if open_page else "dashboard closed"
                with poller if open_page else contextlib.nullcontext():
                    run[open_page] = measured(
                        name,
                        base + "/predict",
                        args.seconds,
                        args.connections,
                        PREDICT_LUA,
                        server=server.pid,
                    )
            rounds.append((run[False], run[True], poller))
        idle, opened = page_cpu_share(base, server.pid, seconds=31.0)  # one OPE refresh
    finally:
        stop(server)
    print_table(rounds, args.seconds)
    print(
        f"server CPU without load: {idle:.4f} s/s idle, {opened:.4f} s/s with a page open: "
        f"the page costs {100 * (opened - idle):.2f} % of one core"
    )
    print(f"the hot routes' timing wrapper: {wrapper_cost_us():+.2f} us per request (in-process)")


def print_table(rounds: list[tuple[Result, Result, PagePoller]], seconds: int) -> None:
    """One line per run, the open/closed ratio per round, and the median ratio."""
    print(f"{'round':>5}  {'page':<7} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'cpu us/req':>10} {'errors':>6}  {'open/closed':>11}  page requests")  # fmt: skip
    ratios = []
    for index, (closed, opened, poller) in enumerate(rounds, 1):
        ratio = opened.requests_per_s / closed.requests_per_s
        ratios.append(ratio)
        for label, result in (("closed", closed), ("open", opened)):
            extra = (f"  {ratio:>11.3f}  {poller.requests} ({poller.failures} failed)"
                     if label == "open" else "")  # fmt: skip
            numbers = (f"{result.requests_per_s:>9.0f} {result.p50_ms:>7.2f} {result.p99_ms:>7.2f} "
                       f"{result.server_cpu_us:>10.1f} {result.errors:>6}")  # fmt: skip
            print(f"{index:>5}  {label:<7} {numbers}{extra}")
    cpu = statistics.median(o.server_cpu_us / c.server_cpu_us for c, o, _ in rounds)
    ope = [took for _, _, poller in rounds for took in poller.ope_seconds]
    print(
        f"median open/closed over {len(rounds)} rounds of {seconds} s: /predict throughput "
        f"{statistics.median(ratios):.3f}, server CPU per /predict {cpu:.3f}"
    )
    print(
        f"OPE estimates the page asked for: {len(ope)}, compute_s median "
        f"{statistics.median(ope):.3f} s, max {max(ope):.3f} s (cached ones are ~0)"
    )


if __name__ == "__main__":
    main()
