"""Featurization throughput with Clipper's AIMD batching vs one item per call, same p99 SLO.

    python -m bench.bench_aimd_featurize [--slo-ms 20] [--seconds 2]

The served item tower of a ml-100k-shaped deep snapshot (seeded random weights: speed does not
depend on them) featurizes items with distinct attributes (no cache hits), called through
`online.featurize.batcher.AdaptiveBatcher` exactly as `PUT /items` calls it, in a process with
the service's collector settings (`online.collector`; `--default-gc` leaves Python's) and its
torch threads (`VELOX_FEATURIZE_THREADS`, 1; `--torch-threads 0` leaves torch's default).
Requests arrive open-loop (Poisson) at a fixed rate, generated in the same process.

Part 1: for AIMD batching and for batch size 1, the rates are stepped up (x1.5) until the p99
request latency (the median of `--trials` runs) passes the SLO; the highest passing rate R is
each one's throughput at that SLO.

Part 2: AIMD across a 3x step in offered load, each run `--step-runs` times, with the worst
one-second p99 after the step: "inside" steps from R/9 to R/3 (still several times what batch
size 1 holds), "margin" from R/4.5 to R/1.5 (the ladder's rung below R), "edge" from R/3 to R.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from feature_store.registry import Registry
from feature_store.snapshot import Snapshot
from online.collector import quiet_collector
from online.featurize.aimd import AimdController
from online.featurize.batcher import AdaptiveBatcher
from online.featurize.tower import FeatureCache, ServedTower
from tests.batch.deep_planted import GENRES
from tests.online.deep_snapshot import publish_deep


def _snapshot(folder: Path) -> Snapshot:
    rng = np.random.default_rng(0)
    rows = [
        {"item_id": f"i{k}", "title": f"movie {k} of the {GENRES[k % 6]} kind",
         "year": int(rng.integers(1930, 2000)), "genres": [GENRES[k % 6], GENRES[(k * 7) % 6]]}
        for k in range(1682)
    ]  # fmt: skip
    schema = pa.schema([("item_id", pa.string()), ("title", pa.string()), ("year", pa.int32()),
                        ("genres", pa.list_(pa.string()))])  # fmt: skip
    publish_deep(str(folder), "movies", pa.Table.from_pylist(rows, schema=schema), n_users=50)
    return Registry(str(folder)).load("movies")


class _Load:
    """Open-loop Poisson requests against a batcher; per-request (arrival, latency)."""

    def __init__(self, batcher: AdaptiveBatcher[Any, Any]) -> None:
        self.batcher = batcher
        self.done: list[tuple[float, float]] = []
        self.count = 0

    async def _one(self) -> None:
        self.count += 1
        attributes = {"title": f"new item {self.count}", "year": 1990, "genres": ["drama"]}
        started = time.perf_counter()
        await self.batcher.submit(attributes)
        self.done.append((started, time.perf_counter() - started))

    async def offer(self, phases: list[tuple[float, float]], rng: np.random.Generator) -> None:
        """Send requests at each phase's (rate per second, seconds), one phase straight after
        the other (no pause at a step), then wait for all answers. A request's task is held
        only until it is answered, as a server holds a request: thousands of answered tasks
        kept alive would make each full collection walk them (30 ms pauses here)."""
        pending: set[asyncio.Task[None]] = set()
        next_at = time.perf_counter()
        for rate, seconds in phases:
            end = time.perf_counter() + seconds
            while next_at < end:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                task = asyncio.create_task(self._one())
                pending.add(task)
                task.add_done_callback(pending.discard)
                next_at += rng.exponential(1.0 / rate)
        while pending:
            await asyncio.wait(set(pending))


WARM_UP_S = 0.25


def _p99(latencies: list[float]) -> float:
    return float(np.percentile(latencies, 99)) if latencies else float("nan")


async def _rate_at_slo(
    tower: ServedTower, max_size: int, slo_s: float, seconds: float, trials: int
) -> tuple[float, float]:
    """The highest offered rate (x1.5 steps) whose p99, the median of `trials` runs, stays
    under `slo_s`, and that p99. (One run a rate let a single pause on a shared VM end the
    search early: batch size 1 once stopped at 22 items/s, another run 1,297.) Each run first
    offers the rate for WARM_UP_S, not counted: a fresh batcher's first calls start its thread
    (a 28 ms p99 at 256 items/s once, against 4.4 ms in the next run)."""
    rate, best = 10.0, (0.0, float("nan"))
    rng = np.random.default_rng(1)
    while rate < 200_000:
        found = []
        for _ in range(trials):
            _, load = _aimd_load(tower, max_size, slo_s)
            counted = time.perf_counter() + WARM_UP_S
            await load.offer([(rate, WARM_UP_S), (rate, seconds)], rng)
            await load.batcher.close()
            found.append(_p99([latency for at, latency in load.done if at >= counted]))
        p99 = float(np.median(found))
        if p99 > slo_s:
            break
        best = (rate, p99)
        rate *= 1.5
    return best


def _aimd_load(tower: ServedTower, max_size: int, slo_s: float) -> tuple[AimdController, _Load]:
    """A fresh batcher (AIMD up to `max_size`, aiming each batch at half the request SLO: a
    request waits about two batches; a 1 ms wait unless batches are of one) and its load."""
    controller = AimdController(slo_s=slo_s / 2, max_size=max_size)
    wait_s = 0.001 if max_size > 1 else 0.0
    return controller, _Load(AdaptiveBatcher(tower.features, controller, max_wait_s=wait_s))


Rows = list[tuple[float, float, float, int]]


async def _step(
    tower: ServedTower, low: float, high: float, slo_s: float, seconds: float, seed: int
) -> tuple[float, Rows]:
    """AIMD at `low` items/s for `seconds`, then at `high`: the p99 of every request that
    arrived after the step, and (second, offered rate, p99, batch size) per second."""
    controller, load = _aimd_load(tower, 1024, slo_s)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    sizes: list[tuple[float, int]] = []

    async def watch() -> None:
        while True:
            sizes.append((time.perf_counter() - start, controller.size))
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch())
    await load.offer([(low, seconds), (high, seconds)], rng)
    watcher.cancel()
    await load.batcher.close()
    after = [lat for at, lat in load.done if at - start >= seconds]
    rows: Rows = []
    for second in range(int(2 * seconds)):
        window = [lat for at, lat in load.done if second <= at - start < second + 1]
        size = max((s for t, s in sizes if second <= t < second + 1), default=0)
        rows.append((float(second), low if second < seconds else high, _p99(window), size))
    return _p99(after), rows


def _print_steps(
    tower: ServedTower, highest: float, single: float, slo_s: float, seconds: float, runs: int
) -> None:
    """Three 3x steps, each run `runs` times, to a third of AIMD's highest passing rate, to
    the x1.5 ladder's rung below it, and to that rate itself."""
    cases = [
        ("inside", highest / 9, highest / 3),
        ("margin", highest / 4.5, highest / 1.5),
        ("edge", highest / 3, highest),
    ]
    first: Rows = []
    print(
        f"\nload steps at {seconds:.0f} s (AIMD), x3 each, {runs} runs: the worst one-second "
        f"p99 after the step (SLO {slo_s * 1000:.0f} ms; size 1 holds it up to {single:.0f}/s)"
    )
    print(f"{'step':7} {'from/s':>7} {'to/s':>7} {'run':>4} {'worst p99 ms':>13} {'second':>7} "
          f"{'p99 after ms':>13} {'batch':>6} {'held':>5}")  # fmt: skip
    for name, low, high in cases:
        for run in range(runs):
            whole, rows = asyncio.run(_step(tower, low, high, slo_s, seconds, seed=2 + run))
            first = first or rows
            worst = max((row for row in rows if row[0] >= seconds), key=lambda row: row[2])
            held = "yes" if worst[2] <= slo_s else "NO"
            p99_ms, whole_ms = worst[2] * 1000, whole * 1000
            print(f"{name:7} {low:>7.0f} {high:>7.0f} {run + 1:>4} {p99_ms:>13.1f} "
                  f"{worst[0]:>7.0f} {whole_ms:>13.1f} {worst[3]:>6} {held:>5}")  # fmt: skip
    print(f"\nthe first inside run, per second\n{'second':>6} {'offered/s':>10} {'p99 ms':>7} "
          f"{'batch size':>11}")  # fmt: skip
    for second, rate, p99, size in first:
        print(f"{second:>6.0f} {rate:>10.0f} {p99 * 1000:>7.1f} {size:>11}")


def main() -> None:
    """Print the throughput table and the load-step table."""
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slo-ms", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--trials", type=int, default=3, help="runs a rate; p99 = their median")
    parser.add_argument("--step-runs", type=int, default=3, help="runs of each load step")
    parser.add_argument("--torch-threads", type=int, default=1, help="0: torch's default")
    parser.add_argument(
        "--default-gc", action="store_true", help="leave the collector as Python sets it"
    )
    args = parser.parse_args()
    slo = args.slo_ms / 1000
    threads = args.torch_threads  # the service's VELOX_FEATURIZE_THREADS, 1 by default
    tower = ServedTower(_snapshot(Path(tempfile.mkdtemp())), FeatureCache(maxsize=1), threads)
    if not args.default_gc:
        quiet_collector()  # as the service does once its snapshot and tower are loaded
    single = asyncio.run(_rate_at_slo(tower, 1, slo, args.seconds, args.trials))
    aimd = asyncio.run(_rate_at_slo(tower, 1024, slo, args.seconds, args.trials))
    print(
        f"p99 SLO {args.slo_ms:.0f} ms; highest offered rate (x1.5 steps) with p99 under it "
        f"(median of {args.trials} runs a rate)"
    )
    print(f"{'batching':14} {'items/s':>9} {'p99 ms':>7} {'vs size 1':>10}")
    print(f"{'size 1':14} {single[0]:>9.0f} {single[1] * 1000:>7.1f} {1.0:>9.1f}x")
    ratio = aimd[0] / single[0] if single[0] else float("inf")
    print(f"{'AIMD':14} {aimd[0]:>9.0f} {aimd[1] * 1000:>7.1f} {ratio:>9.1f}x")
    if not aimd[0]:
        print("no offered rate met the SLO with AIMD batching: no load step to run")
        return
    _print_steps(tower, aimd[0], single[0], slo, args.seconds * 2, args.step_runs)


if __name__ == "__main__":
    main()
