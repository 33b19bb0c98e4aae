"""The score table's covering index: build time by collation, maintenance_work_mem and workers.

    python -m bench.bench_score_index_build [--users 20000] [--rows 500] [--rounds 3]

Builds a `--users` x `--rows` table (bench/score_table_fixture.py), COPYs its rows, in the
parts' (sorted) order, into two tables of a throwaway database: ids in the database's default
collation and ids `COLLATE "C"` (what the load creates). Then builds the load's covering index
`(user_id, score DESC) INCLUDE (...)` under each setting, `--rounds` times in rotated order,
each after a CHECKPOINT, and prints every build's seconds and the median.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from bench.bench_score_queries import render_csv
from bench.score_table_fixture import build_table, catalog_attributes
from feature_store.score_tables.postgres_copy import column_definitions
from feature_store.storage import LocalStorage
from tests.support.postgres_database import temporary_database

Setting = tuple[str, str, int]  # table (collation), maintenance_work_mem, parallel workers
SETTINGS: list[Setting] = [
    ("locale", "256MB", 2),
    ("c", "256MB", 2),
    ("c", "256MB", 0),
    ("c", "512MB", 2),
    ("c", "1GB", 2),
    ("c", "1GB", 0),
]


def main() -> None:
    """Build the table, COPY it twice, time the index builds, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="velox-bench-index-"))
    storage = LocalStorage(root)
    manifest = build_table(storage, "bench", args.users, args.rows, catalog_attributes(10_000))
    csv = render_csv(storage, manifest)
    covered = ", ".join(f'"{c}"' for c in ("item_id", "rank", *manifest.columns))
    seconds: dict[Setting, list[float]] = {}
    try:
        with temporary_database("velox_bench") as url, psycopg.connect(url, autocommit=True) as db:
            ids_c = column_definitions(manifest.columns)
            for table, columns in (("locale", ids_c.replace(' COLLATE "C"', "")), ("c", ids_c)):
                db.execute(f"CREATE TABLE {table} ({columns})")
                with (
                    db.cursor().copy(f"COPY {table} FROM STDIN (FORMAT csv)") as copy,
                    csv.open("rb") as source,
                ):
                    while chunk := source.read(1 << 20):
                        copy.write(chunk)
                db.execute(f"VACUUM (FREEZE) {table}")
            size = db.execute("SELECT pg_size_pretty(pg_relation_size('c'))").fetchone()
            print(f"{manifest.rows:,} rows, table {size[0] if size else '?'}")
            for round_ in range(args.rounds):
                shift = round_ % len(SETTINGS)
                for setting in SETTINGS[shift:] + SETTINGS[:shift]:
                    table, memory, workers = setting
                    db.execute("CHECKPOINT")
                    db.execute(f"SET maintenance_work_mem = '{memory}'")
                    db.execute(f"SET max_parallel_maintenance_workers = {workers}")
                    start = time.perf_counter()
                    db.execute(
                        f'CREATE INDEX ix ON {table} ("user_id", "score" DESC) INCLUDE ({covered})'
                    )
                    seconds.setdefault(setting, []).append(time.perf_counter() - start)
                    db.execute("DROP INDEX ix")
    finally:
        shutil.rmtree(root)
        shutil.rmtree(csv.parent)
    print(f"\n{'ids':<8}{'memory':>8}{'workers':>9}  seconds per round{'median':>12}")
    for (table, memory, workers), runs in seconds.items():
        listed = " ".join(f"{s:5.1f}" for s in runs)
        print(f"{table:<8}{memory:>8}{workers:>9}  {listed:<17}{statistics.median(runs):>12.1f}")


if __name__ == "__main__":
    main()
