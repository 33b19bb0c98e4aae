"""Score-table queries: DuckDB vs PostgreSQL latency, PostgreSQL load vs plain COPY, and
/recommendations vs /predict throughput, in one run.

    python -m bench.bench_score_queries [--users 100000] [--rows 500] [--items 10000]
        [--queries 400] [--seconds 10] [--skip-service] [--load-only] [--load-rounds 1]
        [--load-workers N]

1. builds a `--users` x `--rows` table over a `--items` catalog (bench/score_table_fixture.py);
2. loads it into a throwaway PostgreSQL database (127.0.0.1:5432, dropped at the end) with
   `load_table_into_engine`'s code (verify sha256; user_id range partitions, each binary
   COPY'd and indexed by one of `--load-workers` connections, default: the cores; attach;
   switch) and, as the baseline measured in the same run, COPYs the same rows (the same CSV,
   rendered beforehand) into a plain table through one connection; then builds the same index
   on it, to show what the index costs; for reference, a plain COPY of the same rows in binary
   format (rendered beforehand too). `--load-rounds N`: medians of N rounds, alternating which
   goes first, each step after a CHECKPOINT;
3. top-10 latency p50/p99 per engine, unfiltered and with filters keeping ~10 % and ~1 % of
   the items, at concurrency 1 and 16 (threads in this process, random users); with
   `--pgbench`, also the PostgreSQL engine's own statement under pgbench (16 clients, a C
   client: the server's latency without this process's GIL; bench/score_pgbench.py);
4. `velox serve` (one uvicorn worker) over a served snapshot of the same catalog with a
   top-`--rows` table of 2,000 users: wrk on /predict (Thompson, greedy) and /recommendations
   (DuckDB, PostgreSQL, and a 10 % filter), 16 connections, `--seconds` each.
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pyarrow.parquet as pq

from bench.score_pgbench import pgbench_latencies
from bench.score_service_bench import service_rows
from bench.score_table_fixture import build_table, catalog_attributes, user_name
from feature_store.score_tables import TableManifest, table_dir
from feature_store.score_tables.duckdb_engine import DuckDBConfig, DuckDBEngine
from feature_store.score_tables.engine import ScoreEngine
from feature_store.score_tables.postgres_binary import SIGNATURE, TRAILER, binary_bytes
from feature_store.score_tables.postgres_copy import column_definitions, csv_bytes
from feature_store.score_tables.postgres_engine import PostgresEngine
from feature_store.score_tables.postgres_load import load_table
from feature_store.score_tables.postgres_partitions import (
    COPY_BATCH_ROWS,
    INDEX_MEMORY,
    INDEX_WORKERS,
)
from feature_store.score_tables.postgres_schema import PostgresConfig
from feature_store.storage import LocalStorage
from tests.support.postgres_database import temporary_database

MODEL = "bench"
FILTERS = {"all": None, "~10%": "price < 10", "~1%": "price < 1"}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def latencies(
    engine: ScoreEngine, users: int, where: str | None, n: int, threads: int
) -> list[float]:
    """Seconds per top-10 query of `n` random users, `threads` at a time."""
    rng = random.Random(1)
    names = [user_name(rng.randrange(users)) for _ in range(n)]

    def one(user: str) -> float:
        start = time.perf_counter()
        engine.top_k(MODEL, user, 10, where)
        return time.perf_counter() - start

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, names[: threads * 2]))  # warm connections and caches
        return list(pool.map(one, names))


class _Phases(logging.Handler):
    """Keeps the phase timings `load_table` logs."""

    def __init__(self) -> None:
        super().__init__()
        self.phases: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.phases = dict(getattr(record, "phases", {}))


def render_csv(storage: LocalStorage, manifest: TableManifest, binary: bool = False) -> Path:
    """The table's rows as one COPY csv (or binary) file: a baseline's input, made before its
    clock starts."""
    csv = Path(tempfile.mkdtemp(prefix="velox-bench-csv-")) / "rows.csv"
    with csv.open("wb") as out:
        out.write(SIGNATURE if binary else b"")
        for name in manifest.files:
            part = pq.ParquetFile(storage.root / table_dir(MODEL, 1) / name)
            for batch in part.iter_batches(batch_size=COPY_BATCH_ROWS):
                out.write(binary_bytes(batch) if binary else csv_bytes(batch))
        out.write(TRAILER if binary else b"")
    return csv


def _checkpoint(url: str) -> None:
    """Flush what earlier steps wrote, so no step pays for another's checkpoint."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CHECKPOINT")


def _our_load(storage: LocalStorage, config: PostgresConfig) -> dict[str, float]:
    """Seconds of `load_table` into `schema` ("total") and of its logged phases."""
    handler = _Phases()
    logger = logging.getLogger("feature_store.score_tables.postgres_load")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    _checkpoint(config.url)
    start = time.perf_counter()
    load_table(storage, config, MODEL, 1)
    total = time.perf_counter() - start
    logger.removeHandler(handler)
    return {"total": total, **handler.phases}


def _plain_copy(
    url: str, csv: Path, manifest: TableManifest, binary: bool = False
) -> tuple[float, float]:
    """Seconds of a plain COPY of the rendered rows, and of it plus the same index (binary:
    only the COPY)."""
    _checkpoint(url)
    with psycopg.connect(url) as connection:
        connection.execute(f"CREATE TABLE plain ({column_definitions(manifest.columns)})")
        start = time.perf_counter()
        statement = f"COPY plain FROM STDIN (FORMAT {'binary' if binary else 'csv'})"
        with (
            connection.cursor().copy(statement) as copy,
            csv.open("rb") as source,
        ):
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        connection.commit()
        plain = time.perf_counter() - start
        if binary:
            connection.execute("DROP TABLE plain")
            connection.commit()
            return plain, plain
        covered = ", ".join(f'"{c}"' for c in ("item_id", "rank", *manifest.columns))
        connection.execute(f"SET maintenance_work_mem = '{INDEX_MEMORY}'")  # as the load does
        connection.execute(f"SET max_parallel_maintenance_workers = {INDEX_WORKERS}")
        connection.execute(f'CREATE INDEX ON plain ("user_id", "score" DESC) INCLUDE ({covered})')
        connection.commit()
        indexed = time.perf_counter() - start
        connection.execute("DROP TABLE plain")
        connection.commit()
    return plain, indexed


def load_rates(
    storage: LocalStorage, url: str, manifest: TableManifest, rounds: int, workers: int | None
) -> list[tuple[str, float]]:
    """Median seconds over `rounds` of our load (and its phases), of a plain COPY, of a plain
    COPY + the index and of a plain binary COPY; the order alternates between rounds, each
    step starts after a CHECKPOINT. Round 0 loads into the default schema, which the latency
    part queries."""
    csv = render_csv(storage, manifest)
    binary = render_csv(storage, manifest, binary=True)
    config = PostgresConfig(url=url, keep=1, **({"load_workers": workers} if workers else {}))
    print(
        f"our load: {config.load_workers} connections, parts gathered into partitions of >= "
        f"{config.partition_rows:,} rows; the plain COPYs: one connection"
    )
    ours: list[dict[str, float]] = []
    plains: list[tuple[float, float]] = []
    binaries: list[float] = []
    for round_ in range(rounds):
        schema = config.schema_name if round_ == 0 else f"{config.schema_name}_r{round_}"
        if round_ % 2:
            plains.append(_plain_copy(url, csv, manifest))
            binaries.append(_plain_copy(url, binary, manifest, binary=True)[0])
        ours.append(_our_load(storage, config.model_copy(update={"schema_name": schema})))
        if not round_ % 2:
            plains.append(_plain_copy(url, csv, manifest))
            binaries.append(_plain_copy(url, binary, manifest, binary=True)[0])
        if round_:
            with psycopg.connect(url, autocommit=True) as connection:
                connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        print(
            f"round {round_}: our load {ours[-1]['total']:.1f} s, plain COPY {plains[-1][0]:.1f} s"
        )
    shutil.rmtree(csv.parent)
    shutil.rmtree(binary.parent)
    rows = [("plain COPY (baseline)", statistics.median(p for p, _ in plains))]
    rows += [("plain COPY + same index", statistics.median(i for _, i in plains))]
    rows += [("plain COPY, binary", statistics.median(binaries))]
    rows += [("our load, total", statistics.median(o["total"] for o in ours))]
    rows += [
        (f"  its {name}", statistics.median(o[name] for o in ours))
        for name in ours[0]
        if name != "total"
    ]
    return rows


def main() -> None:
    """Build, load, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--skip-service", action="store_true")
    parser.add_argument("--load-only", action="store_true", help="only the PostgreSQL load (2.)")
    parser.add_argument("--load-rounds", type=int, default=1, help="medians of this many loads")
    parser.add_argument("--load-workers", type=int, help="our load's connections (default: cores)")
    parser.add_argument("--engines", default="duckdb,postgres", help="engines timed in 3.")
    parser.add_argument(
        "--pgbench", action="store_true", help="also the PostgreSQL statement under pgbench"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="velox-bench-scores-"))
    storage = LocalStorage(root)
    start = time.perf_counter()
    manifest = build_table(storage, MODEL, args.users, args.rows, catalog_attributes(args.items))
    print(
        f"table: {manifest.users} users x {args.rows} rows = {manifest.rows:,} rows, "
        f"{sum(p.stat().st_size for p in root.rglob('*.parquet')) / 1e9:.2f} GB Parquet, "
        f"built in {time.perf_counter() - start:.0f} s"
    )
    try:
        with temporary_database("velox_bench") as url:
            loads = load_rates(storage, url, manifest, args.load_rounds, args.load_workers)
            rows = manifest.rows
            print(f"\n{'PostgreSQL load':<26}{'seconds':>9}{'rows/s':>12}{'vs plain COPY':>15}")
            for name, seconds in loads:
                rate, ratio = rows / seconds, loads[0][1] / seconds
                print(f"{name:<26}{seconds:>9.1f}{rate:>12,.0f}{ratio:>14.2f}x")
            if args.load_only:
                return
            postgres = PostgresEngine(storage, PostgresConfig(url=url, pool_size=16))
            engines: dict[str, ScoreEngine] = {
                "duckdb": DuckDBEngine(storage, DuckDBConfig(threads=2)),
                "postgres": postgres,
            }
            engines = {k: v for k, v in engines.items() if k in args.engines.split(",")}
            header = ("engine", "filter", "conc", "p50 ms", "p99 ms", "queries/s")
            print("\n{:<10}{:<7}{:>5}{:>9}{:>9}{:>11}".format(*header))
            for name, engine in engines.items():
                for label, where in FILTERS.items():
                    for threads in (1, 16):
                        n = args.queries * (4 if threads > 1 else 1)
                        began = time.perf_counter()
                        seen = latencies(engine, args.users, where, n, threads)
                        rate = n / (time.perf_counter() - began)
                        print(
                            f"{name:<10}{label:<7}{threads:>5}{percentile(seen, 50) * 1e3:>9.2f}"
                            f"{percentile(seen, 99) * 1e3:>9.2f}{rate:>11.0f}"
                        )
            if args.pgbench:
                for label, where in FILTERS.items():
                    p50, p99, rate = pgbench_latencies(
                        url, postgres, MODEL, where, args.users, args.seconds
                    )
                    print(f"{'pgbench':<10}{label:<7}{16:>5}{p50:>9.2f}{p99:>9.2f}{rate:>11.0f}")
            for engine in engines.values():
                if engine is not postgres:
                    engine.close()
            postgres.close()
            if not args.skip_service:
                service_rows(url, args.rows, args.items, args.seconds)
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
