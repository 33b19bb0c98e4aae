"""Top-10 query latency: the partitioned version table `load_table` builds vs one plain table.

    python -m bench.bench_score_partition_latency [--users 40000] [--rows 500] [--queries 2000]

Builds a `--users` x `--rows` table (bench/score_table_fixture.py, 10,000 users a part, so
`--users 40000` gives 4 partitions), loads it with `load_table` (range partitions by user_id)
and COPYs the same rows into one plain table with the same covering index. Then the engine's
statement (`top_rows_sql`, prepared, one connection, concurrency 1) for random users, blocks
of 100 queries alternating between the two tables, unfiltered and with filters keeping ~10 %
and ~1 % of the items; prints p50/p99 per table and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

import psycopg

from bench.bench_score_queries import FILTERS, MODEL, percentile, render_csv
from bench.score_table_fixture import build_table, catalog_attributes, user_name
from feature_store.score_tables.postgres_copy import column_definitions
from feature_store.score_tables.postgres_load import load_table
from feature_store.score_tables.postgres_partitions import covering_index_sql
from feature_store.score_tables.postgres_schema import PostgresConfig, qualified, relation_name
from feature_store.score_tables.sql_filter import compile_sql_filter, top_rows_sql
from feature_store.storage import LocalStorage
from tests.support.postgres_database import temporary_database

BLOCK = 100


def main() -> None:
    """Build, load both ways, query alternately, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=40_000)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--queries", type=int, default=2_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="velox-bench-partitions-"))
    storage = LocalStorage(root)
    manifest = build_table(storage, MODEL, args.users, args.rows, catalog_attributes(10_000))
    try:
        with temporary_database("velox_bench") as url:
            config = PostgresConfig(url=url)
            load_table(storage, config, MODEL, 1)
            csv = render_csv(storage, manifest)
            with psycopg.connect(url, autocommit=True) as connection:
                connection.execute(f"CREATE TABLE plain ({column_definitions(manifest.columns)})")
                with (
                    connection.cursor().copy("COPY plain FROM STDIN (FORMAT csv)") as copy,
                    csv.open("rb") as rows,
                ):
                    while chunk := rows.read(1 << 20):
                        copy.write(chunk)
                connection.execute(
                    covering_index_sql("plain_user_score", "plain", manifest.columns)
                )
                connection.execute("VACUUM ANALYZE plain")  # all-visible, as COPY FREEZE leaves it
            shutil.rmtree(csv.parent)
            sources = {
                "partitioned": qualified(config.schema_name, relation_name(MODEL, 1)),
                "plain": "plain",
            }
            rng = random.Random(1)
            print(f"{manifest.rows:,} rows, {len(manifest.files)} partitions; concurrency 1")
            print(f"{'filter':<7}{'table':<13}{'p50 ms':>9}{'p99 ms':>9}{'p50 vs plain':>14}")
            with psycopg.connect(url, autocommit=True) as connection:
                for label, where in FILTERS.items():
                    condition = (
                        compile_sql_filter(where, manifest.columns, "postgres") if where else None
                    )
                    params = list(condition.params) if condition else []
                    seen: dict[str, list[float]] = {name: [] for name in sources}
                    for block in range(2 * args.queries // BLOCK):
                        name = list(sources)[block % 2]
                        sql = top_rows_sql(sources[name], condition, "postgres")
                        for _ in range(BLOCK):
                            user = user_name(rng.randrange(args.users))
                            started = time.perf_counter()
                            connection.execute(sql, [user, *params, 10], prepare=True).fetchall()
                            seen[name].append(time.perf_counter() - started)
                    plain50 = percentile(seen["plain"][BLOCK:], 50)
                    for name, times in seen.items():
                        p50, p99 = percentile(times[BLOCK:], 50), percentile(times[BLOCK:], 99)
                        print(
                            f"{label:<7}{name:<13}{p50 * 1e3:>9.3f}{p99 * 1e3:>9.3f}"
                            f"{p50 / plain50:>13.2f}x"
                        )
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
