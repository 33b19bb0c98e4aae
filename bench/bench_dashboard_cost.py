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
up there too). Then the server's CPU time per second with a page open and no other load (60 s:
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
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx

from bench.bench_service import PREDICT_LUA, Result, cpu_seconds, measured, start_server, stop
from bench.service_fixture import N_USERS, publish_bench_snapshot
from tests.support.redis_server import free_port

WARMUP_ROUNDS = 600


class PagePoller:
    """Polls the dashboard's data endpoints as an open page does, in a thread, while open.

    Its refresh clock runs only while the page is open, so that short open phases see each
    panel at its own rate (the OPE panel once a minute of open time, not once per phase).
    """

    def __init__(self, base: str) -> None:
        """A closed page of the service at `base`; the thread runs until `close`."""
        self.base = base
        self.requests = 0
        self.failures = 0
        self.ope_seconds: list[float] = []
        self._shown = threading.Event()
        self._stop = threading.Event()
        self._open_s = 0.0
        self._since: float | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def opened(self) -> Iterator[None]:
        """The page is open inside this block."""
        self._since = time.monotonic()
        self._shown.set()
        try:
            yield
        finally:
            self._shown.clear()
            self._open_s += time.monotonic() - self._since
            self._since = None

    def close(self) -> None:
        """Stop the thread."""
        self._stop.set()
        self._shown.set()
        self._thread.join(timeout=60)

    def _clock(self) -> float:
        since = self._since
        return self._open_s + (time.monotonic() - since if since is not None else 0.0)

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
            due = {panel["data_path"]: 0.0 for panel in info["panels"]}
            period = {panel["data_path"]: panel["refresh_s"] for panel in info["panels"]}
            while not self._stop.is_set():
                if not self._shown.wait(0.1) or self._stop.is_set():
                    continue
                for path, when in due.items():
                    if when > self._clock():
                        continue
                    self._get(http, path)
                    if path.endswith("/ope"):
                        for policy in info["ope_policies"]:
                            self._get(http, path, policy=policy)
                    due[path] = self._clock() + period[path]
                self._stop.wait(min(0.1, max(0.0, min(due.values()) - self._clock())))


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


def page_cpu_share(base: str, pid: int, idle_s: float, open_s: float) -> tuple[float, float]:
    """The server's CPU seconds per second, idle and then with a page open (no other load)."""
    before = cpu_seconds(pid)
    time.sleep(idle_s)
    idle = (cpu_seconds(pid) - before) / idle_s
    poller = PagePoller(base)
    with poller.opened():
        before = cpu_seconds(pid)
        time.sleep(open_s)
        opened = (cpu_seconds(pid) - before) / open_s
    poller.close()
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
    rounds: list[tuple[Result, Result]] = []
    poller = PagePoller(base)
    try:
        warm_up(base)
        for index in range(args.rounds):
            run = {}
            for open_page in (index % 2 == 1, index % 2 == 0):
                name = "dashboard open" if open_page else "dashboard closed"
                with poller.opened() if open_page else contextlib.nullcontext():
                    run[open_page] = measured(
                        name,
                        base + "/predict",
                        args.seconds,
                        args.connections,
                        PREDICT_LUA,
                        server=server.pid,
                    )
            rounds.append((run[False], run[True]))
        poller.close()
        idle, opened = page_cpu_share(base, server.pid, idle_s=20.0, open_s=60.0)
    finally:
        poller.close()
        stop(server)
    print_table(rounds, poller, args.seconds)
    print(
        f"server CPU without load: {idle:.4f} s/s idle, {opened:.4f} s/s with a page open: "
        f"the page costs {100 * (opened - idle):.2f} % of one core"
    )
    print(f"the hot routes' timing wrapper: {wrapper_cost_us():+.2f} us per request (in-process)")


def print_table(rounds: list[tuple[Result, Result]], poller: PagePoller, seconds: int) -> None:
    """One line per run, the open/closed ratio per round, and the median ratios."""
    print(f"{'round':>5}  {'page':<7} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'cpu us/req':>10} {'errors':>6}  {'open/closed':>11}")  # fmt: skip
    ratios = []
    for index, (closed, opened) in enumerate(rounds, 1):
        ratio = opened.requests_per_s / closed.requests_per_s
        ratios.append(ratio)
        for label, result in (("closed", closed), ("open", opened)):
            extra = f"  {ratio:>11.3f}" if label == "open" else ""
            numbers = (f"{result.requests_per_s:>9.0f} {result.p50_ms:>7.2f} {result.p99_ms:>7.2f} "
                       f"{result.server_cpu_us:>10.1f} {result.errors:>6}")  # fmt: skip
            print(f"{index:>5}  {label:<7} {numbers}{extra}")
    cpu = statistics.median(o.server_cpu_us / c.server_cpu_us for c, o in rounds)
    print(
        f"median open/closed over {len(rounds)} rounds of {seconds} s: /predict throughput "
        f"{statistics.median(ratios):.3f}, server CPU per /predict {cpu:.3f}"
    )
    ope = poller.ope_seconds
    print(
        f"the open page's requests: {poller.requests} ({poller.failures} failed), of them "
        f"{len(ope)} OPE, compute_s max {max(ope, default=0.0):.3f} s"
    )


if __name__ == "__main__":
    main()
