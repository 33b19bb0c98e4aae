"""Materialization throughput (user x item scores per second) beside bare baselines.

CPU (Spark local on this machine), each case beside plain numpy `W @ X.T` + `argpartition`
over the same float64 matrices in chunks of users, measured in the same run:

    python -m bench.bench_materialize [--cases ml-100k,1e5x1e4] [--top-n 500]

GPU (pure torch, no Spark: `TorchScorer`, what each materialize task runs on a card, its
blocks taken as they come, as a task reads each into its part), beside a bare torch chunked
matmul + topk on the same card (float64 like the score contract, and float32 for reference)
and the card's own float64 matrix-product rate; first a check that the card's answers equal
NumpyScorer's:

    PYTHONPATH=. python3 bench/bench_materialize.py --gpu-only [--device cuda] [--small]

ml-100k: the real MovieLens-100k users, items and item attributes (batch.datasets), factors
drawn at random with velox train's d = 34 (throughput does not depend on their values).
1e5x1e4: batch.datasets.large_catalog's synthetic catalog, d = 64.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from batch.materialize.plan import ROWS_PER_PART, part_rows, split_users
from batch.materialize.scoring import CPU_CHUNK_SCORES, Blocks, NumpyScorer
from batch.materialize.torch_scorer import CUDA_CHUNK_SCORES, TorchScorer

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from feature_store.snapshot_data import SnapshotData

MODEL = "bench"
ML100K_DIM = 34


def timed(run: Callable[[], Any]) -> float:
    """Seconds one call of `run` takes."""
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def numpy_baseline(weights: NDArray[np.float64], items: NDArray[np.float64], k: int) -> None:
    """Plain numpy: `W @ X.T` and `argpartition` per chunk of users (same chunk budget)."""
    items_t = np.ascontiguousarray(items.T)
    chunk = max(1, CPU_CHUNK_SCORES // items.shape[0])
    for start in range(0, len(weights), chunk):
        scores = weights[start : start + chunk] @ items_t
        np.argpartition(-scores, k - 1, axis=1)


def ml100k_data() -> SnapshotData:
    """MovieLens-100k's ids and item attributes with random d = 34 factors."""
    import pyarrow.parquet as pq

    from batch.datasets.movielens import load_movielens_100k
    from batch.datasets.reader import known_item_types
    from feature_store.snapshot_data import SnapshotData
    from velox.settings import VeloxSettings

    files = load_movielens_100k(VeloxSettings().dataset_cache())
    items = known_item_types(pq.read_table(files.items))
    users = pq.read_table(files.users).column("user_id").to_pylist()
    rng = np.random.default_rng(0)
    n, m = items.num_rows, len(users)
    return SnapshotData(
        kind="mf",
        item_ids=items.column("item_id").to_pylist(),
        item_features=rng.standard_normal((n, ML100K_DIM), dtype=np.float32),
        item_attributes=items.drop_columns(["item_id"]),
        user_ids=users,
        user_weights=rng.standard_normal((m, ML100K_DIM), dtype=np.float32),
        user_counts=np.zeros(m, np.int64),
        prior_mean=np.zeros(ML100K_DIM),
        lam=1.0,
        noise_std=1.0,
    )


def synthetic_data(users: int, items: int) -> SnapshotData:
    """The large-catalog generator's snapshot data."""
    from batch.datasets.large_catalog import CatalogSpec, synthetic_catalog

    return synthetic_catalog(CatalogSpec(n_items=items, dim=64, n_users=users))


def cpu_case(name: str, data: SnapshotData, top_n: int, spark: SparkSession) -> list[str]:
    """One CPU case: `velox materialize` (Spark local) and the numpy baseline.

    Small cases run materialize twice: the first run pays for starting Spark's Python workers
    and importing Velox there, the second finds them warm (Spark reuses its workers).
    """
    from batch.materialize.job import MaterializeOptions, materialize
    from feature_store.registry import Registry

    with tempfile.TemporaryDirectory(prefix="bench-materialize-") as root:
        Registry(root).publish(MODEL, data)
        items = np.asarray(data.item_features, np.float64)
        weights = np.asarray(data.user_weights, np.float64)
        m, n = weights.shape[0], items.shape[0]
        k = min(top_n, n)
        options = MaterializeOptions(model=MODEL, device="cpu", top_n=top_n)
        runs = 2 if m * n < 10**8 else 1
        spark_s = [timed(lambda: materialize(options, root, spark=spark)) for _ in range(runs)]
        base_s = timed(lambda: numpy_baseline(weights, items, k))
    base = m * n / base_s
    names = ["velox materialize (Spark local, cpu)", "  again, Python workers warm"]
    lines = [
        f"{name:<10} {m:>7} {n:>7} {k:>4}  {label:<37}{s:8.2f} s {m * n / s:10.3g}/s  "
        f"{base_s / s:5.2f}x"
        for label, s in zip(names, spark_s, strict=False)
    ]
    lines.append(
        f"{name:<10} {m:>7} {n:>7} {k:>4}  {'numpy W@X.T + argpartition':<37}"
        f"{base_s:8.2f} s {base:10.3g}/s  1.00x"
    )
    return lines


def run_cpu(cases: list[str], top_n: int) -> None:
    """Every CPU case in one Spark session; the session's start is not timed."""
    from batch.spark import get_spark

    spark = get_spark(None, "bench-materialize")
    print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    header = f"{'case':<10} {'users':>7} {'items':>7} {'k':>4}  {'path':<37}{'time':>10} "
    print(header + f"{'scores/s':>12}  vs baseline")
    builders: dict[str, Callable[[], SnapshotData]] = {
        "ml-100k": ml100k_data,
        "1e5x1e4": lambda: synthetic_data(100_000, 10_000),
    }
    for case in cases:
        for line in cpu_case(case, builders[case](), top_n, spark):
            print(line, flush=True)


def drain(blocks: Blocks) -> int:
    """Take every block (each is on the host once it comes); the number of users."""
    return sum(rows.stop - rows.start for rows, _ in blocks)


def exact_on_card(device: str) -> str:
    """TorchScorer on the card against NumpyScorer: tie-heavy integer data (exact products)
    at k = 1, 7, 500 and all items, and real-valued data with 101 identical items."""
    rng = np.random.default_rng(1)
    items = rng.integers(-2, 3, (3_000, 8)).astype(np.float64)
    weights = rng.integers(-2, 3, (2_000, 8)).astype(np.float64)
    same, graphed = [], []
    for k in (1, 7, 500, 3_000):
        want = NumpyScorer(items, k).top(weights)
        got = TorchScorer(items, k, device, chunk_scores=1 << 20, part_users=2_000).top(weights)
        same.append(
            np.array_equal(want.items, got.items) and np.array_equal(want.scores, got.scores)
        )
        one_chunk = TorchScorer(items, k, device, part_users=2_000)  # one chunk: the graph
        calls = [one_chunk.top(weights) for _ in range(2)]  # captured, then replayed
        graphed.append(
            all(np.array_equal(want.items, c.items) for c in calls)
            and all(np.array_equal(want.scores, c.scores) for c in calls)
        )
    real = rng.standard_normal((20_000, 64))
    real[100:201] = real[5]
    users = rng.standard_normal((3_000, 64))
    want = NumpyScorer(real, 500).top(users)
    got = TorchScorer(real, 500, device, part_users=3_000).top(users)
    rows = float(np.mean((want.items == got.items).all(axis=1)))
    worst = float(np.max(np.abs(want.scores - got.scores) / np.abs(want.scores).max()))
    return (
        f"exact on the card: integer data equal to NumpyScorer at k = 1/7/500/all: pipeline "
        f"{same}, one-chunk graph {graphed}; "
        f"real-valued with 101 identical items: {rows:.4f} of rows in the same order, "
        f"largest score difference {worst:.1e} relative"
    )


def gpu_case(users: int, items: int, k: int, device: str, dim: int = 64) -> list[str]:
    """TorchScorer against bare chunked matmul + topk (float64 and float32) on one card."""
    import torch

    rng = np.random.default_rng(0)
    x = rng.standard_normal((items, dim))
    w = rng.standard_normal((users, dim))
    dev = torch.device(device)
    chunk = max(1, CUDA_CHUNK_SCORES // items)  # the baselines' chunk: the scorer's largest

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def bare_once(dtype: torch.dtype, with_topk: bool = True, to_host: bool = False) -> float:
        xt = torch.from_numpy(x).to(dev, dtype).T.contiguous()
        wd = torch.from_numpy(w).to(dev, dtype)
        sync()
        started = time.perf_counter()
        for start in range(0, users, chunk):
            scores = wd[start : start + chunk] @ xt
            if with_topk:
                values, rows = torch.topk(scores, k, dim=1)
                if to_host:
                    values.cpu(), rows.cpu()
        sync()
        return time.perf_counter() - started

    repeats = 15 if users * items < 10**8 else 1  # a small call lasts a millisecond: median

    def bare(dtype: torch.dtype, with_topk: bool = True, to_host: bool = False) -> float:
        return float(np.median([bare_once(dtype, with_topk, to_host) for _ in range(repeats)]))

    def median(run: Callable[[], Any]) -> float:
        return float(np.median([timed(run) for _ in range(repeats)]))

    def built(part_users: int) -> tuple[TorchScorer, float]:
        started = time.perf_counter()
        scorer = TorchScorer(x, k, device=device, part_users=part_users)
        sync()
        return scorer, time.perf_counter() - started

    parts = split_users(users, k, 1, part_rows(ROWS_PER_PART, dev.type, items, k))
    part_users = parts[0][1] - parts[0][0]
    scorer, build_s = built(users)
    bare(torch.float64), bare(torch.float32)  # warm-up: the baselines' kernels and memory
    part_scorer, part_build_s = built(part_users)  # a worker's: sized from its parts
    first = timed(lambda: drain(scorer.blocks(w)))
    again = median(lambda: drain(scorer.blocks(w)))
    per_part = median(lambda: [drain(part_scorer.blocks(w[a:b])) for a, b in parts])
    whole = median(lambda: scorer.top(w))
    one_chunk = scorer.chunk_rows(users) >= users
    eager = median(lambda: drain(scorer._pipelined(w, scorer.chunk_rows(users))))
    bare64, bare32, mm64 = bare(torch.float64), bare(torch.float32), bare(torch.float64, False)
    host64 = bare(torch.float64, to_host=True)
    total = users * items
    label = f"{users:>7} {items:>8} {k:>4}"
    rows = [
        ("velox TorchScorer.blocks, first call after the build", first),
        ("  the same, called again", again),
        (f"  one call per part as the job runs it ({len(parts)} x {part_users})", per_part),
        ("  the same + building the part scorer (one worker, whole job)", per_part + part_build_s),
        ("  TorchScorer.top: all rows into new host arrays", whole),
        (f"  the pipeline (eager){', not the graph' if one_chunk else ''}", eager),
        ("bare torch matmul + topk, float64", bare64),
        ("bare torch matmul + topk, float64, to host", host64),
        ("bare torch matmul + topk, float32", bare32),
        ("bare torch matmul only, float64", mm64),
    ]
    lines = [
        f"{label}  {name:<52}{s * 1e3:9.2f} ms {total / s:10.3g}/s  {bare64 / s:5.2f}x  "
        f"{host64 / s:5.2f}x"
        for name, s in rows
    ]
    lines.append(
        f"{label}  (not timed above: building the scorer, items to the card and its two pinned "
        f"host buffers: {build_s:.3f} s for calls of {users} users, {part_build_s:.3f} s for parts "
        f"of {part_users})"
    )
    return lines


def card_matmul_rate(device: str, size: int = 8192) -> str:
    """The card's float64 and float32 GEMM rate on a size^3 product (TFLOP/s)."""
    import torch

    rates = []
    for dtype in (torch.float64, torch.float32):
        a = torch.randn(size, size, device=device, dtype=dtype)
        a @ a
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(5):
            a @ a
        torch.cuda.synchronize()
        rates.append(5 * 2 * size**3 / (time.perf_counter() - started) / 1e12)
    return f"card GEMM {size}^3: float64 {rates[0]:.1f} TFLOP/s, float32 {rates[1]:.1f} TFLOP/s"


def run_gpu(device: str, small: bool, top_n: int) -> None:
    """The GPU table: ml-100k's shape, 1e5 x 1e4 and 1e5 x 1e6 (or small shapes with --small)."""
    import torch

    if device == "cuda":
        print(torch.cuda.get_device_name(0), "| torch", torch.__version__)
        print(card_matmul_rate(device))
    shapes = (
        [(2_000, 5_000, 64), (2_000, 50_000, 64)]
        if small
        else [(943, 1_682, 34), (100_000, 10_000, 64), (100_000, 1_000_000, 64)]
    )  # 943 x 1,682, d = 34: movielens-100k's shape (its data is not on the card's machine)
    print(exact_on_card(device), flush=True)
    header = f"{'users':>7} {'items':>8} {'k':>4}  {'path':<52}{'time':>12} {'scores/s':>12}"
    print(header + "  vs bare f64  vs bare f64 to host")
    for users, items, dim in shapes:
        for line in gpu_case(users, items, top_n, device, dim):
            print(line, flush=True)


def main() -> None:
    """Parse the arguments and run the CPU or the GPU table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="ml-100k,1e5x1e4")
    parser.add_argument("--top-n", type=int, default=500)
    parser.add_argument("--gpu-only", action="store_true")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--small", action="store_true", help="GPU mode: small shapes (smoke)")
    args = parser.parse_args()
    if args.gpu_only:
        run_gpu(args.device, args.small, args.top_n)
    else:
        run_cpu(args.cases.split(","), args.top_n)


if __name__ == "__main__":
    main()
