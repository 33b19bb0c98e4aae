"""Snapshot publish and load next to plain Arrow IPC writes and reads of the same tables.

Run: python -m bench.bench_snapshot [--items 1000000] [--dim 64] [--users 100000]
Every time is the best of --repeat runs, on a warm page cache, measured in this one run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from pyarrow import ipc

from feature_store.arrow_tables import read_factors
from feature_store.registry import Registry
from feature_store.snapshot_data import SnapshotData
from feature_store.snapshot_files import open_snapshot_files

GENRES = ("Comedy", "Drama", "Action", "Horror", "Romance", "Documentary")


def make_data(n: int, d: int, m: int, seed: int = 0) -> SnapshotData:
    """A catalog of n items (d-dim features, year/price/genre attributes) and m users."""
    rng = np.random.default_rng(seed)
    attributes = pa.table(
        {
            "year": rng.integers(1920, 2025, n),
            "price": rng.uniform(1, 30, n),
            "genre": pa.array(rng.choice(GENRES, n).tolist(), pa.string()),
        }
    )
    return SnapshotData(
        kind="mf",
        item_ids=[f"item-{k}" for k in range(n)],
        item_features=rng.standard_normal((n, d), dtype=np.float32),
        item_attributes=attributes,
        user_ids=[f"user-{k}" for k in range(m)],
        user_weights=rng.standard_normal((m, d), dtype=np.float32),
        user_counts=rng.integers(0, 500, m),
        prior_mean=np.zeros(d),
        lam=1.0,
        noise_std=1.0,
    )


def plain_tables(data: SnapshotData) -> tuple[pa.Table, pa.Table]:
    """The same columns as a snapshot's two files, built with plain pyarrow."""
    d = data.item_features.shape[1]
    items = pa.table(
        {
            "item_id": pa.array(data.item_ids, pa.string()),
            "features": pa.FixedSizeListArray.from_arrays(data.item_features.reshape(-1), d),
        }
    )
    assert data.item_attributes is not None
    for name in data.item_attributes.column_names:
        items = items.append_column(name, data.item_attributes[name])
    users = pa.table(
        {
            "user_id": pa.array(data.user_ids, pa.string()),
            "w": pa.FixedSizeListArray.from_arrays(data.user_weights.reshape(-1), d),
            "count": data.user_counts,
        }
    )
    return items, users


def best_of(repeat: int, run: Callable[[int], Any]) -> float:
    """The shortest of `repeat` timed calls of run(i)."""
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - start)
    return min(times)


def write_plain(directory: Path, tables: tuple[pa.Table, pa.Table], *, fsync: bool) -> None:
    """Write both tables as Arrow IPC files (optionally fsynced), nothing else."""
    directory.mkdir()
    for name, table in zip(("items.arrow", "users.arrow"), tables, strict=True):
        path = str(directory / name)
        with pa.OSFile(path, "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        if fsync:
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)


def read_plain(directory: Path, *, mapped: bool) -> NDArray[np.float32]:
    """Open both files with plain pyarrow; return the item features as a numpy view."""
    tables = []
    for name in ("items.arrow", "users.arrow"):
        source = (
            pa.memory_map(str(directory / name)) if mapped else pa.OSFile(str(directory / name))
        )
        tables.append(ipc.open_file(source).read_all())
    features = tables[0].column("features").chunk(0).flatten()
    values: NDArray[np.float32] = features.to_numpy(zero_copy_only=True)
    return values


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()

    data = make_data(args.items, args.dim, args.users)
    tables = plain_tables(data)
    with tempfile.TemporaryDirectory(dir=args.dir) as temp:
        root = Path(temp)
        registry = Registry(str(root / "snapshots"))
        plain = best_of(
            args.repeat, lambda i: write_plain(root / f"plain-{i}", tables, fsync=False)
        )
        plain_sync = best_of(
            args.repeat, lambda i: write_plain(root / f"sync-{i}", tables, fsync=True)
        )
        publish = best_of(args.repeat, lambda i: registry.publish("bench", data, promote=False))
        promote = best_of(args.repeat, lambda i: registry.promote("bench", i + 1))
        size = sum(p.stat().st_size for p in (root / "snapshots" / "bench" / "v1").iterdir())

        read_mapped = best_of(args.repeat, lambda i: read_plain(root / "plain-0", mapped=True))
        read_memory = best_of(args.repeat, lambda i: read_plain(root / "plain-0", mapped=False))

        def zero_copy_open(verify: bool) -> None:
            files = open_snapshot_files(registry.storage, "bench", 1, verify=verify)
            read_factors(files.items, "features", args.dim, "item")

        open_time = best_of(args.repeat, lambda i: zero_copy_open(False))
        verified_open = best_of(args.repeat, lambda i: zero_copy_open(True))
        load = best_of(args.repeat, lambda i: registry.load("bench", 1, verify=False))
        load_verified = best_of(args.repeat, lambda i: registry.load("bench", 1))

    rows = [
        ("plain IPC write (items + users)", plain, plain, ""),
        ("plain IPC write + fsync", plain_sync, plain, ""),
        ("publish (validate, write, sha256, fsync, rename)", publish, plain, "<= 2x plain write"),
        ("promote (verified load + CURRENT switch)", promote, plain, ""),
        ("plain IPC read, memory-mapped", read_mapped, read_mapped, ""),
        ("plain IPC read into memory", read_memory, read_mapped, ""),
        ("zero-copy open (map, manifest, features view)", open_time, read_mapped, "<= 0.1 s"),
        ("sha256 verify of all files", verified_open - open_time, read_mapped, "(separately)"),
        ("full load: Snapshot, no verify", load, read_mapped, ""),
        ("full load: Snapshot, verified (registry.load)", load_verified, read_mapped, ""),
    ]
    print(
        f"snapshot of {args.items:,} items x d={args.dim} + {args.users:,} users "
        f"({size / 2**20:.0f} MiB on disk), best of {args.repeat}, warm page cache"
    )
    print(f"| {'step':<52} | {'seconds':>8} | {'x baseline':>10} | target |")
    print(f"|{'-' * 54}|{'-' * 10}|{'-' * 12}|--------|")
    for name, seconds, baseline, target in rows:
        print(f"| {name:<52} | {seconds:8.3f} | {seconds / baseline:10.2f} | {target} |")


if __name__ == "__main__":
    main()
