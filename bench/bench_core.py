"""Micro-benchmarks of the velox core, each next to a plain numpy baseline from the same run.

Run: python -m bench.bench_core [--rounds 200]
Every time is the best of --rounds short rounds, measurements and baselines taking turns (on a
shared machine the minimum of short rounds is the least noisy estimate). BLAS runs
single-threaded, as a serving process should: at these sizes OpenBLAS threads only add
synchronisation (d = 128 updates get ~15x slower with threads on a busy 2-core machine).
"""

from __future__ import annotations

import os

# Must be set before numpy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import functools
import itertools
import platform
import timeit
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from velox.catalog import ItemMatrix
from velox.policies import make_policy
from velox.posterior import REFRESH_EVERY, UserPosterior
from velox.scoring import score_items, top_k
from velox.state_codec import decode_state, encode_state

K = 10


def best_us(fns: dict[str, Callable[[], object]], calls: int, rounds: int) -> dict[str, float]:
    """Best per-call time of each function in microseconds, `calls` calls each.

    The functions take turns, round after round, so that load from other processes on a
    shared machine hits a measurement and its baseline alike; each keeps its best round.
    """
    number = max(1, calls // rounds)
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], timeit.timeit(fn, number=number) / number * 1e6)
    return best


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    """Print one aligned table."""
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def user(dim: int, n_obs: int, seed: int = 0) -> UserPosterior:
    """A posterior after `n_obs` observations of random unit-scale features."""
    rng = np.random.default_rng(seed)
    posterior = UserPosterior.prior(rng.normal(size=dim), lam=1.0, noise_std=1.0)
    for x in rng.normal(scale=dim**-0.5, size=(n_obs, dim)):
        posterior.update(x, float(rng.normal()))
    return posterior


def catalog(n: int, dim: int, seed: int = 1) -> ItemMatrix:
    """n random items whose features have norm about 1."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n, dim), dtype=np.float32) * np.float32(dim**-0.5)
    return ItemMatrix.from_features(features)


def naive_sherman_morrison(dim: int) -> Callable[[NDArray[np.float64]], None]:
    """The textbook update of a stored inverse with np.outer: the baseline for `update`."""
    inverse = np.eye(dim)
    b = np.zeros(dim)

    def step(x: NDArray[np.float64]) -> None:
        px = inverse @ x
        inverse[...] -= np.outer(px, px) / (1.0 + x @ px)
        b[...] += 0.5 * x

    return step


def update_row(dim: int, rounds: int) -> list[object]:
    """One row of the update table: ours, the naive Sherman-Morrison and one np.dot."""
    xs = itertools.cycle(np.random.default_rng(dim).normal(scale=dim**-0.5, size=(4096, dim)))
    posterior = user(dim, 0)
    naive = naive_sherman_morrison(dim)
    x0 = next(xs)

    def ours() -> None:
        posterior.update(next(xs), 0.5)

    def baseline() -> None:
        naive(next(xs))

    t = best_us(
        {"ours": ours, "naive": baseline, "dot": functools.partial(np.dot, x0, x0)},
        12_800,
        rounds,
    )
    ratio = t["ours"] / t["naive"]
    return [dim, f"{t['ours']:.1f}", f"{t['naive']:.1f}", f"{t['dot']:.2f}", f"{ratio:.2f}"]


def bench_update(rounds: int) -> None:
    """Update cost at d = 16/64/128 against np.dot and the naive Sherman-Morrison."""
    table(
        f"UserPosterior.update (amortised refresh every {REFRESH_EVERY} updates included)",
        ["d", "update us", "naive SM us", "np.dot us", "update/naive"],
        [update_row(dim, rounds) for dim in (16, 64, 128)],
    )


def top_k_row(n: int, calls: int, rounds: int) -> list[object]:
    """One row of the top-K table at n items, d = 64."""
    items = catalog(n, 64)
    w = np.random.default_rng(2).normal(size=64)
    w32 = w.astype(np.float32)

    def matvec() -> object:
        return items.features @ w32

    def ours() -> object:
        return top_k(score_items(items, w), K)

    def plain() -> object:
        scores = items.features @ w32
        part = np.argpartition(scores, n - K)[n - K :]
        return part[np.argsort(-scores[part])]

    t = best_us({"matvec": matvec, "ours": ours, "plain": plain}, calls, rounds)
    base, score_top, argpartition = t["matvec"], t["ours"], t["plain"]
    return [
        n,
        f"{base:.1f}",
        f"{score_top:.1f}",
        f"{score_top - base:.1f}",
        f"{argpartition:.1f}",
        f"{score_top / base:.2f}",
    ]


def bench_top_k(rounds: int) -> None:
    """score_items + top_k against the bare matvec and a matvec + argpartition top-k."""
    table(
        f"score_items + top_k (k = {K}, d = 64)",
        ["items", "matvec us", "score+top-K us", "top-K part", "matvec+argpart us", "ours/matvec"],
        [top_k_row(10_000, 4000, rounds), top_k_row(1_000_000, 200, rounds)],
    )


def codec_row(dim: int, rounds: int) -> list[object]:
    """One row of the codec table, for a user with 200 observations."""
    posterior = user(dim, 200)
    data = encode_state(posterior)
    rng = np.random.default_rng(3)

    def decode_mean() -> object:
        return decode_state(data).mean()

    def decode_sample() -> object:
        return decode_state(data).sample(rng)

    t = best_us(
        {
            "copy": functools.partial(bytearray, data),
            "mean": decode_mean,
            "sample": decode_sample,
            "encode": functools.partial(encode_state, posterior),
        },
        10_000,
        rounds,
    )
    copy, mean, sample, encode = t["copy"], t["mean"], t["sample"], t["encode"]
    return [
        dim,
        len(data),
        f"{copy:.2f}",
        f"{mean:.2f}",
        f"{sample:.2f}",
        f"{encode:.2f}",
        f"{mean / copy:.2f}",
    ]


def bench_codec(rounds: int) -> None:
    """Decode + mean / sample, and encode, against a plain copy of the same bytes."""
    table(
        "state codec",
        ["d", "bytes", "copy us", "decode+mean us", "decode+sample us", "encode us", "dm/copy"],
        [codec_row(dim, rounds) for dim in (16, 64, 128)],
    )


def bench_policies(rounds: int) -> None:
    """Each policy's select against greedy (score + top-K): the difference is exploration."""
    dim = 64
    rows: list[list[object]] = []
    specs = ["greedy", "egreedy:0.1", "thompson", "linucb:1.0"]
    for n in (1682, 10_000):
        items = catalog(n, dim)
        for n_obs in (0, 200, 2000):
            posterior = user(dim, n_obs)
            times = best_us(
                {
                    spec: functools.partial(make_policy(spec, seed=0).select, items, posterior, K)
                    for spec in specs
                },
                2000,
                rounds,
            )
            for spec in specs:
                extra = times[spec] - times["greedy"]
                ratio = times[spec] / times["greedy"]
                rows.append([n, n_obs, spec, f"{times[spec]:.1f}", f"{extra:.1f}", f"{ratio:.2f}"])
    table(
        f"Policy.select (k = {K}, d = {dim}; baseline: greedy = score + top-K)",
        ["items", "user obs", "policy", "select us", "exploration us", "ratio to greedy"],
        rows,
    )


def main() -> None:
    """Run every table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
        f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}"
    )
    bench_update(args.rounds)
    bench_top_k(args.rounds)
    bench_codec(args.rounds)
    bench_policies(args.rounds)


if __name__ == "__main__":
    main()
