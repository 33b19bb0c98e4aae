"""The retrieval cascade at 10⁶ items: recall, compute and the confidence gate, then /predict.

    python -m bench.bench_cascade [--items 1000000] [--dim 64] [--queries 400]
                                  [--margins 0.3,0.5,...] [--service-seconds 10]

Publishes `velox synthetic-catalog`'s catalog (with its ANN index) into a temporary root,
loads it as the service does (time and RSS reported), then for `--queries` users' posterior
means (their batch weights) compares with the exact top-10 of the full catalog:

* cheap-only (every request takes the cheap path), costly-only, and the gate at each margin:
  recall@10 and NDCG@10 of the greedy answer against the exact one, rows touched per request
  (the compute: lists scanned + rows re-ranked; the exact path touches every row) and the
  wall time per request on one core; the first half of the queries pick the margin (the
  smallest whose recall is within 0.01 of costly-only's), the second half report it;
* the CPU of one exploring selection through the cascade at that margin, in process
  (`ServedCascade.select`, Thompson sampling: retrieval with the mean and a posterior draw,
  then the policy over the candidates), for the same users;
* then, with `--service-seconds`, `velox serve` over the same snapshot with the cascade on and
  off (`VELOX_ANN_RETRIEVAL=false`: exact scoring) in one run: `GET /predict?user=U&k=10`,
  Thompson sampling, 16 connections (wrk), throughput and p50/p99, and the worker's RSS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
from numpy.typing import NDArray

from batch.datasets.large_catalog import CatalogSpec, synthetic_catalog
from bench.bench_service import Result, children, measured, start_server, stop
from bench.trained_catalog import trained_catalog
from feature_store.ann_tuning import exact_top
from feature_store.registry import Registry
from feature_store.snapshot import Snapshot
from online.retrieval.cascade import CascadeConfig, retrieve
from online.retrieval.index_geometry import IndexGeometry
from online.retrieval.served_cascade import ServedCascade
from tests.support.redis_server import free_port
from velox.policies import make_policy
from velox.posterior import UserPosterior
from velox.scoring import score_items, top_k

K = 10
MODEL = "big"
EQUAL_RECALL = 0.01
"""Recall within this of costly-only's counts as equal when the gate's margin is chosen."""


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of a process in MB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_mode(
    snapshot: Snapshot,
    posteriors: list[UserPosterior],
    truth: NDArray[np.intp],
    config: CascadeConfig,
) -> tuple[float, float, float, float, float]:
    """Recall@K, NDCG@K, rows touched, µs per request and the share of costly requests."""
    index, items = snapshot.ann, snapshot.items
    assert index is not None
    geometry = IndexGeometry.of(index, items)
    discounts = 1.0 / np.log2(np.arange(2, K + 2))
    recalls, ndcgs, touched, costly = [], [], [], 0
    started = time.perf_counter()
    for posterior, exact in zip(posteriors, truth, strict=True):
        found = retrieve(index, geometry, items, posterior, K, None, config, None)
        scores = found.catalog.features @ posterior.mean().astype(np.float32)
        top = found.rows[np.argsort(-scores, kind="stable")[:K]]
        hits = np.isin(top, exact)
        recalls.append(hits.mean())
        ndcgs.append(float(discounts[: len(top)] @ hits) / float(discounts.sum()))
        touched.append(found.probed_rows)
        costly += found.source != "ann-cheap"
    elapsed = (time.perf_counter() - started) / len(posteriors) * 1e6
    share = costly / len(posteriors)
    return float(np.mean(recalls)), float(np.mean(ndcgs)), float(np.mean(touched)), elapsed, share


def offline(snapshot: Snapshot, queries: int, margins: list[float]) -> float:
    """The recall/compute table; returns the margin chosen on the first half of the queries."""
    rng = np.random.default_rng(1)
    users = rng.choice(len(snapshot.user_ids), size=queries, replace=False)
    posteriors = [
        UserPosterior.prior(snapshot.w0_for(str(snapshot.user_ids[u])), snapshot.lam) for u in users
    ]
    means = np.stack([p.mean() for p in posteriors])
    truth = exact_top(snapshot.items.features, means.astype(np.float32))
    started = time.perf_counter()
    for mean in means[:20]:
        top_k(score_items(snapshot.items, mean), K)
    exact_us = (time.perf_counter() - started) / 20 * 1e6
    half = queries // 2
    pick, report = slice(0, half), slice(half, queries)
    modes = {
        "cheap-only": CascadeConfig(gate_margin=-1e9),
        "costly-only": CascadeConfig(gated=False),
        **{f"gated m={m:g}": CascadeConfig(gate_margin=m) for m in margins},
    }
    costly_recall = run_mode(snapshot, posteriors[pick], truth[pick], modes["costly-only"])[0]
    chosen = next(
        (m for m in margins
         if run_mode(snapshot, posteriors[pick], truth[pick], modes[f"gated m={m:g}"])[0]
         >= costly_recall - EQUAL_RECALL),
        margins[-1],
    )  # fmt: skip
    print(f"\nexact scan: {snapshot.items.n} rows, {exact_us:.0f} us/query (one core, numpy)")
    print(
        f"gate margin chosen on the first {half} queries: {chosen:g} (reported on the other half)"
    )
    print(f"{'mode':<16}{'recall@10':>10}{'ndcg@10':>9}{'rows/req':>10}{'vs costly':>10}"
          f"{'us/req':>8}{'costly %':>9}")  # fmt: skip
    base = run_mode(snapshot, posteriors[report], truth[report], modes["costly-only"])
    for name, config in modes.items():
        recall, ndcg, rows, micros, share = run_mode(
            snapshot, posteriors[report], truth[report], config
        )
        mark = " <- chosen" if name == f"gated m={chosen:g}" else ""
        print(f"{name:<16}{recall:>10.3f}{ndcg:>9.3f}{rows:>10.0f}{rows / base[2]:>9.2f}x"
              f"{micros:>8.0f}{share * 100:>8.0f}%{mark}")  # fmt: skip
    micros = thompson_select_us(snapshot, posteriors[report], chosen)
    print(f"Thompson selection through the cascade (retrieval + policy, margin {chosen:g}): "
          f"{micros:.0f} us CPU each, in process")  # fmt: skip
    return chosen


def thompson_select_us(snapshot: Snapshot, posteriors: list[UserPosterior], margin: float) -> float:
    """CPU µs of one exploring /predict selection (`ServedCascade.select`, Thompson sampling
    at scale 1) per user, the second of two passes over `posteriors`."""
    assert snapshot.ann is not None
    cascade = ServedCascade(snapshot, snapshot.ann, CascadeConfig(gate_margin=margin), seed=0)
    policy = make_policy("thompson", seed=0)
    for posterior in posteriors:  # warm-up pass: page in the lists these users read
        cascade.select(policy, posterior, K, None, None, explore=True)
    started = time.process_time()
    for posterior in posteriors:
        cascade.select(policy, posterior, K, None, None, explore=True)
    return (time.process_time() - started) / len(posteriors) * 1e6


PREDICT_LUA = """
request = function()
  return wrk.format("GET", string.format("/predict?user=u%d&k=10", math.random(0, USERS)))
end
"""


def service(
    root: Path, small_root: Path, seconds: int, n_users: int, margin: float, workers: int
) -> None:
    """`/predict` with the cascade and with exact scoring over the same snapshot, and the
    service's ceiling on this machine: the same call over a small catalog (exact scoring)."""
    if shutil.which("wrk") is None:
        sys.exit("the service part needs wrk on the PATH (apt-get install wrk)")
    script = PREDICT_LUA.replace("USERS", str(n_users - 1))
    rows: list[tuple[Result, float, float]] = []
    runs = (("cascade", root, "true"), ("exact", root, "false"), ("ceiling", small_root, "true"))
    for name, snapshot_root, retrieval in runs:
        home = Path(tempfile.mkdtemp(prefix="velox-cascade-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("VELOX_")}
        env.update(
            VELOX_HOME=str(home), VELOX_MODEL=MODEL, VELOX_SNAPSHOT_ROOT=str(snapshot_root),
            VELOX_ANN_RETRIEVAL=retrieval, VELOX_ANN_GATE_MARGIN=str(margin),
        )  # fmt: skip
        port = free_port()
        started = time.perf_counter()
        server = start_server(
            [sys.executable, "-c", "from velox.cli import main; main()", "serve",
             "--port", str(port), "--workers", str(workers)],
            env, f"http://127.0.0.1:{port}/readyz",
        )  # fmt: skip
        ready_s = time.perf_counter() - started
        try:
            url = f"http://127.0.0.1:{port}/predict"
            for user in range(20):  # warm-up, and a check that the path answers
                httpx.get(url, params={"user": f"u{user}", "k": K}, timeout=30).raise_for_status()
            result = replace(measured(name, url, seconds, 16, script, server=server.pid), name=name)
            rss = rss_mb(server.pid) + sum(rss_mb(pid) for pid in children(server.pid))
            rows.append((result, rss, ready_s))
        finally:
            stop(server)
            shutil.rmtree(home, ignore_errors=True)
    print(f"\n/predict k=10 Thompson, 16 connections, {seconds} s each, {workers} worker(s);"
          " ceiling = the same call over a 10^4-item catalog (exact scoring)")  # fmt: skip
    print(f"{'path':<10}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>8}"
          f"{'cpu us/req':>11}{'RSS MB':>8}{'start s':>8}")  # fmt: skip
    for r, rss, ready in rows:
        cpu = r.server_cpu_us + r.redis_cpu_us  # workers and embedded Redis are children
        print(f"{r.name:<10}{r.requests_per_s:>8.0f}{r.p50_ms:>8.2f}{r.p99_ms:>8.2f}{r.errors:>8}"
              f"{cpu:>11.0f}{rss:>8.0f}{ready:>8.1f}")  # fmt: skip
    cascade, exact, ceiling = (row[0].requests_per_s for row in rows)
    print(
        f"cascade / exact throughput: {cascade / exact:.1f}x; "
        f"cascade / ceiling: {cascade / ceiling:.2f}x; ceiling / exact: {ceiling / exact:.1f}x"
    )


def main() -> None:
    """Publish the catalog, print the offline table, then the service table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--margins", default="0,0.005,0.01,0.02,0.03,0.05,0.1")
    parser.add_argument("--user-spread", type=float, default=CatalogSpec.user_spread)
    parser.add_argument("--service-seconds", type=int, default=10)
    parser.add_argument(
        "--catalog",
        choices=("synthetic", "trained"),
        default="synthetic",
        help="trained: item vectors fitted to ratings (bench/trained_catalog.py)",
    )
    parser.add_argument("--train-events", type=int, default=5_000_000)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers served")
    parser.add_argument(
        "--root", help="publish the catalog into this directory, or reuse the one there (kept)"
    )
    parser.add_argument(
        "--service-margin", type=float, default=None, help="gate margin served (default: chosen)"
    )
    args = parser.parse_args()
    root = Path(args.root or tempfile.mkdtemp(prefix="velox-catalog-"))
    try:
        started = time.perf_counter()
        spec = CatalogSpec(
            n_items=args.items, dim=args.dim, n_users=args.users, user_spread=args.user_spread
        )
        registry = Registry(str(root))
        if args.root and (root / MODEL).exists():
            print(f"reusing the catalog published in {root}")
        elif args.catalog == "trained":
            registry.publish(MODEL, trained_catalog(spec, args.train_events))
        else:
            registry.publish(MODEL, synthetic_catalog(spec))
        print(f"generated and published {args.items} x {args.dim} with its index in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        before = rss_mb()
        started = time.perf_counter()
        snapshot = registry.load(MODEL)
        print(f"snapshot load (verify + index): {time.perf_counter() - started:.1f} s, "
              f"RSS +{rss_mb() - before:.0f} MB")  # fmt: skip
        margin = offline(snapshot, args.queries, [float(m) for m in args.margins.split(",")])
        if args.service_seconds > 0:
            small_root = Path(tempfile.mkdtemp(prefix="velox-small-catalog-"))
            try:
                small = CatalogSpec(n_items=10_000, dim=args.dim, n_users=args.users)
                Registry(str(small_root)).publish(MODEL, synthetic_catalog(small))
                margin = args.service_margin or margin
                service(root, small_root, args.service_seconds, args.users, margin, args.workers)
            finally:
                shutil.rmtree(small_root, ignore_errors=True)
    finally:
        if not args.root:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
