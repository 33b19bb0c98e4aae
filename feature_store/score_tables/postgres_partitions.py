"""A score table version in PostgreSQL as user_id range partitions, filled concurrently.

The parts of a table are sorted by user_id and hold contiguous, disjoint user ranges, so each
run of parts is one range partition of the version's relation:

    <relation>            PARTITION BY RANGE (user_id), index ON ONLY the parent
    <relation>_pNNNNN     the rows of parts NNNNN.. (NNNNN: the first part's number),
                          bounds [first user of its first part, first user of the next run)

Each partition is created, COPY'd (binary, `FREEZE`: new in its own transaction) and indexed
by a connection of its own, several at once; a CHECK constraint equal to its bound makes the
later ATTACH PARTITION skip the validation scan. Until the parent exists and attaches them
(postgres_load.py) the partitions are plain tables that nothing reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import pairwise

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import errors as pg_errors
from psycopg import sql

from feature_store.score_tables.errors import ScoreTableCorruptError
from feature_store.score_tables.layout import KEY_COLUMNS, USER_ID, parse_part_name, table_dir
from feature_store.score_tables.manifest import TableManifest
from feature_store.score_tables.postgres_binary import (
    SIGNATURE,
    TRAILER,
    binary_bytes,
    supports_binary,
)
from feature_store.score_tables.postgres_copy import column_definitions, csv_bytes, rendered_ahead
from feature_store.score_tables.postgres_schema import qualified
from feature_store.score_tables.sql_filter import quote_identifier
from feature_store.storage import SnapshotStorage

COPY_BATCH_ROWS = 65_536
INDEX_MEMORY = "256MB"
"""`maintenance_work_mem` of each partition's transaction (SET LOCAL): the index build's sort
memory; a bound, not an allocation. The rows arrive sorted, so the sort is cheap either way:
512MB and 1GB built the index no faster (BENCHMARKS.md)."""
INDEX_WORKERS = 2
"""`max_parallel_maintenance_workers` when one partition holds the whole table; with several,
the partitions' own connections use the cores and each index build runs alone (0)."""


@dataclass(frozen=True)
class Partition:
    """One range partition: its relation name, the parts it holds, its user_id bounds."""

    name: str
    parts: tuple[str, ...]
    lower: str | None
    """The first user_id it may hold (None: MINVALUE)."""
    upper: str | None
    """The first user_id of the next partition, excluded (None: MAXVALUE)."""

    def bound_sql(self) -> sql.Composed:
        """`FROM (...) TO (...)` of ATTACH PARTITION."""
        low = sql.SQL("MINVALUE") if self.lower is None else sql.Literal(self.lower)
        high = sql.SQL("MAXVALUE") if self.upper is None else sql.Literal(self.upper)
        return sql.SQL("FOR VALUES FROM ({}) TO ({})").format(low, high)

    def check_sql(self) -> sql.Composable:
        """`, CHECK (...))`: a constraint equal to the bound (user_id is NOT NULL already),
        closing the column list of CREATE TABLE."""
        user = sql.Identifier(USER_ID)
        terms = []
        if self.lower is not None:
            terms.append(sql.SQL("{} >= {}").format(user, sql.Literal(self.lower)))
        if self.upper is not None:
            terms.append(sql.SQL("{} < {}").format(user, sql.Literal(self.upper)))
        if not terms:
            return sql.SQL(")")
        return sql.SQL(", CHECK ({}))").format(sql.SQL(" AND ").join(terms))


def _first_user(storage: SnapshotStorage, path: str) -> str:
    part = pq.ParquetFile(pa.BufferReader(storage.read_buffer(path)))
    return str(part.read_row_group(0, columns=[USER_ID]).column(0)[0])


def plan_partitions(
    storage: SnapshotStorage, manifest: TableManifest, relation: str, min_rows: int
) -> list[Partition]:
    """Runs of consecutive parts of at least `min_rows` rows (the last may hold fewer), one
    partition each, bounded by the first users of its run and of the next; parts whose first
    users do not ascend are refused (a part reaching into the next one's range is refused by
    the CHECK constraint while it is copied)."""
    directory = table_dir(manifest.model, manifest.table_version)
    runs: list[list[str]] = []
    rows = min_rows
    for name in sorted(manifest.files):
        # A run without rows yet has no user to bound it: the next part joins it.
        if rows >= min_rows:
            runs.append([])
            rows = 0
        runs[-1].append(name)
        rows += manifest.files[name].rows
    if rows == 0 and len(runs) > 1:  # trailing parts without rows join the run before
        runs[-2].extend(runs.pop())
    lowers: list[str | None] = [None]
    for run in runs[1:]:
        first = next(name for name in run if manifest.files[name].rows > 0)
        lowers.append(_first_user(storage, f"{directory}/{first}"))
    for (before, after), run in zip(pairwise(lowers[1:]), runs[2:], strict=True):
        if after is not None and before is not None and after <= before:
            raise ScoreTableCorruptError(
                f"{directory}/{run[0]} starts at user {after!r}, not after the parts before it"
            )
    return [
        Partition(
            name=f"{relation}_p{parse_part_name(run[0]):05d}",
            parts=tuple(run),
            lower=lower,
            upper=upper,
        )
        for run, lower, upper in zip(runs, lowers, [*lowers[1:], None], strict=True)
    ]


def _copy_chunks(
    storage: SnapshotStorage,
    manifest: TableManifest,
    parts: tuple[str, ...],
    encode: Callable[[pa.RecordBatch], pa.Buffer],
) -> Iterator[pa.Buffer]:
    """The rows of `parts`, in order, as COPY input; a part with other columns is refused."""
    directory = table_dir(manifest.model, manifest.table_version)
    expected = [*KEY_COLUMNS, *manifest.columns]
    for name in parts:
        part = pq.ParquetFile(pa.BufferReader(storage.read_buffer(f"{directory}/{name}")))
        if part.schema_arrow.names != expected:
            raise ScoreTableCorruptError(
                f"{directory}/{name} has columns {part.schema_arrow.names}, not {expected}"
            )
        for batch in part.iter_batches(batch_size=COPY_BATCH_ROWS):
            yield encode(batch)


def covering_index_sql(index: str, relation: str, columns: dict[str, str]) -> str:
    """CREATE INDEX of the covering index `(user_id, score DESC) INCLUDE (item_id, rank,
    <attributes>)` on `relation` (a quoted name, or `ONLY <name>`)."""
    covered = ", ".join(quote_identifier(c) for c in ("item_id", "rank", *columns))
    return (
        f"CREATE INDEX {quote_identifier(index)} ON {relation} "
        f'("user_id", "score" DESC) INCLUDE ({covered})'
    )


class LoadCancelledError(Exception):
    """Another partition failed: this one stops and rolls back."""


@dataclass(frozen=True)
class PartitionFill:
    """What every partition's connection needs: where to connect, what to read, how to build."""

    url: str
    schema: str
    storage: SnapshotStorage
    manifest: TableManifest
    index_workers: int

    def fill(self, partition: Partition, stop: threading.Event) -> None:
        """Create, COPY, index and ANALYZE one partition in one transaction of its own."""
        target = qualified(self.schema, partition.name)
        columns = column_definitions(self.manifest.columns)
        index = partition.name + "_user_score"
        binary = supports_binary(self.manifest.columns)
        encode = binary_bytes if binary else csv_bytes
        rows = _copy_chunks(self.storage, self.manifest, partition.parts, encode)
        copy_sql = f"COPY {target} FROM STDIN (FORMAT {'binary' if binary else 'csv'}, FREEZE)"
        with psycopg.connect(self.url) as connection, connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_MEMORY}'")
            cursor.execute(f"SET LOCAL max_parallel_maintenance_workers = {self.index_workers}")
            cursor.execute("SET LOCAL synchronous_commit = off")  # the switch commit syncs
            cursor.execute(f"DROP TABLE IF EXISTS {target}")
            cursor.execute(sql.SQL(f"CREATE TABLE {target} ({columns}") + partition.check_sql())
            # FREEZE (the table is new in this transaction): rows are written already frozen
            # and all-visible, so queries are index-only scans from the start. Binary input
            # when every column has an encoding: no float formatting here, no parsing there.
            try:
                with cursor.copy(copy_sql) as copy:
                    copy.write(SIGNATURE if binary else b"")
                    for chunk in rendered_ahead(rows):
                        if stop.is_set():
                            raise LoadCancelledError(partition.name)
                        copy.write(chunk)
                    copy.write(TRAILER if binary else b"")
            except pg_errors.CheckViolation as error:
                raise ScoreTableCorruptError(
                    f"parts {', '.join(partition.parts)} hold users outside "
                    f"[{partition.lower!r}, {partition.upper!r}): the parts overlap"
                ) from error
            cursor.execute(covering_index_sql(index, target, self.manifest.columns))
            cursor.execute(f"ANALYZE {target}")


def fill_partitions(fill: PartitionFill, partitions: list[Partition], workers: int) -> None:
    """Fill every partition, at most `workers` at once; the first failure stops the others
    (their transactions roll back) and is raised once all have stopped."""
    stop = threading.Event()
    with ThreadPoolExecutor(max(1, min(workers, len(partitions))), "copy-partition") as pool:
        futures = [pool.submit(fill.fill, partition, stop) for partition in partitions]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        errors = [error for future in done if (error := future.exception()) is not None]
        if errors:
            stop.set()
            for future in futures:
                future.cancel()
            wait(futures)
            raise errors[0]


def attach_sql(
    schema: str, parent: str, columns: dict[str, str], partitions: list[Partition]
) -> list[sql.SQL | sql.Composed]:
    """Statements creating the partitioned parent and its index ON ONLY itself, then
    attaching every filled partition and its index (which makes the parent's index valid)."""
    target = qualified(schema, parent)
    index = qualified(schema, parent + "_user_score")
    definitions = column_definitions(columns)
    statements: list[sql.SQL | sql.Composed] = [
        sql.SQL(f"CREATE TABLE {target} ({definitions}) PARTITION BY RANGE ({USER_ID})"),
        sql.SQL(covering_index_sql(parent + "_user_score", f"ONLY {target}", columns)),
    ]
    for partition in partitions:
        child = qualified(schema, partition.name)
        bound = partition.bound_sql()
        statements.append(sql.SQL(f"ALTER TABLE {target} ATTACH PARTITION {child} ") + bound)
        child_index = qualified(schema, partition.name + "_user_score")
        statements.append(sql.SQL(f"ALTER INDEX {index} ATTACH PARTITION {child_index}"))
    return statements
