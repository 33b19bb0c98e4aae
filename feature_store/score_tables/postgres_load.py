"""Load a score table version into PostgreSQL: verify, bulk COPY, index, switch, drop old.

1. every part's sha256 is checked first: a bad table never reaches the database;
2. one transaction creates the version's relation, streams every part into it with
   `COPY ... FROM STDIN (FORMAT csv)` (never row by row), builds the covering index
   `(user_id, score DESC) INCLUDE (item_id, rank, <attributes>)`, ANALYZEs it and
   registers it: a crash leaves nothing half-loaded;
3. one transaction makes it current: the registry's `is_current` flags and the model's view
   change together, so readers see the old version or the new one;
4. versions beyond the `keep` newest are dropped.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg.types.json import Jsonb

from feature_store.score_tables.errors import ScoreEngineError, ScoreTableCorruptError
from feature_store.score_tables.layout import KEY_COLUMNS, table_dir
from feature_store.score_tables.manifest import TableManifest
from feature_store.score_tables.postgres_copy import column_definitions, csv_bytes
from feature_store.score_tables.postgres_schema import (
    REGISTRY,
    PostgresConfig,
    qualified,
    registry_ddl,
    relation_name,
    view_name,
)
from feature_store.score_tables.sql_filter import quote_identifier
from feature_store.score_tables.versions import verify_table
from feature_store.storage import SnapshotStorage

COPY_BATCH_ROWS = 65_536
INDEX_MEMORY = "256MB"
"""`maintenance_work_mem` of the load transaction (SET LOCAL): the index build's sort memory,
split among its parallel workers; a bound, not an allocation. The rows arrive sorted, so the
sort is cheap either way: 512MB and 1GB built the index no faster (BENCHMARKS.md)."""
INDEX_WORKERS = 2
"""`max_parallel_maintenance_workers` of the load transaction (the server's limits still apply)."""

log = logging.getLogger(__name__)


@contextmanager
def _timed(phases: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    phases[name] = time.perf_counter() - start


def _lock_key(text: str) -> int:
    """A signed 64-bit advisory-lock key for `text`."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def _csv_chunks(storage: SnapshotStorage, manifest: TableManifest) -> Iterator[pa.Buffer]:
    """Every part's rows, in order, as COPY csv chunks; a part with other columns is refused."""
    directory = table_dir(manifest.model, manifest.table_version)
    expected = [*KEY_COLUMNS, *manifest.columns]
    for name in manifest.files:
        part = pq.ParquetFile(pa.BufferReader(storage.read_buffer(f"{directory}/{name}")))
        if part.schema_arrow.names != expected:
            raise ScoreTableCorruptError(
                f"{directory}/{name} has columns {part.schema_arrow.names}, not {expected}"
            )
        for batch in part.iter_batches(batch_size=COPY_BATCH_ROWS):
            yield csv_bytes(batch)


def _ahead(chunks: Iterator[pa.Buffer], depth: int = 4) -> Iterator[pa.Buffer]:
    """`chunks`, produced by a helper thread up to `depth` ahead of the consumer.

    Decoding Parquet and writing CSV (C++, without the GIL) then overlaps with sending the
    previous chunk and with the server parsing it.
    """
    done = object()
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    failure: list[BaseException] = []
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not offer(chunk):
                    return
        except BaseException as error:  # handed to the consumer, re-raised there
            failure.append(error)
        offer(done)

    producer = threading.Thread(target=produce, name="copy-csv", daemon=True)
    producer.start()
    try:
        while (item := ready.get()) is not done:
            yield cast(pa.Buffer, item)
        if failure:
            raise failure[0]
    finally:
        stop.set()
        producer.join()


def _copy_parts(
    cursor: psycopg.Cursor[Any], storage: SnapshotStorage, manifest: TableManifest, target: str
) -> None:
    """Stream every part, in order, into `target` through one COPY."""
    # FREEZE (the table is new in this transaction): rows are written already frozen, so the
    # index build and the first queries do not rewrite every page to set hint bits.
    with cursor.copy(f"COPY {target} FROM STDIN (FORMAT csv, FREEZE)") as copy:
        for chunk in _ahead(_csv_chunks(storage, manifest)):
            copy.write(chunk)


def _create_and_fill(
    connection: psycopg.Connection[Any],
    storage: SnapshotStorage,
    config: PostgresConfig,
    manifest: TableManifest,
    phases: dict[str, float],
) -> None:
    schema = config.schema_name
    name = relation_name(manifest.model, manifest.table_version)
    target = qualified(schema, name)
    covered = ", ".join(quote_identifier(c) for c in ("item_id", "rank", *manifest.columns))
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_MEMORY}'")
        cursor.execute(f"SET LOCAL max_parallel_maintenance_workers = {INDEX_WORKERS}")
        cursor.execute("SET LOCAL synchronous_commit = off")  # the switch commit syncs
        cursor.execute(f"DROP TABLE IF EXISTS {target}")  # what a crashed load left, if anything
        cursor.execute(f"CREATE TABLE {target} ({column_definitions(manifest.columns)})")
        with _timed(phases, "copy"):
            _copy_parts(cursor, storage, manifest, target)
        with _timed(phases, "index"):
            cursor.execute(
                f"CREATE INDEX {quote_identifier(name + '_user_score')} ON {target} "
                f'("user_id", "score" DESC) INCLUDE ({covered})'
            )
            cursor.execute(f"ANALYZE {target}")
        cursor.execute(
            f"INSERT INTO {qualified(schema, REGISTRY)} (model, table_version, relation, manifest)"  # noqa: S608
            " VALUES (%s, %s, %s, %s)",
            [manifest.model, manifest.table_version, name, Jsonb(manifest.to_dict())],
        )


def _switch(
    connection: psycopg.Connection[Any], config: PostgresConfig, model: str, version: int
) -> None:
    """Make `version` current: flags and view in one transaction."""
    schema = config.schema_name
    relation = qualified(schema, relation_name(model, version))
    view = qualified(schema, view_name(model))
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(f"{schema}/{model}")])
        connection.execute(
            f"UPDATE {qualified(schema, REGISTRY)} SET is_current = (table_version = %s) "  # noqa: S608
            "WHERE model = %s",
            [version, model],
        )
        connection.execute(f"DROP VIEW IF EXISTS {view}")
        connection.execute(f"CREATE VIEW {view} AS SELECT * FROM {relation}")  # noqa: S608


def _drop_old(connection: psycopg.Connection[Any], config: PostgresConfig, model: str) -> list[int]:
    """Drop the versions of `model` beyond the `keep` newest (the current one is always kept)."""
    registry = qualified(config.schema_name, REGISTRY)
    with connection.transaction():
        rows = connection.execute(
            f"SELECT table_version, relation FROM {registry} WHERE model = %s "  # noqa: S608
            "ORDER BY is_current DESC, table_version DESC",
            [model],
        ).fetchall()
        dropped = []
        for version, relation in rows[config.keep :]:
            connection.execute(f"DROP TABLE IF EXISTS {qualified(config.schema_name, relation)}")
            connection.execute(
                f"DELETE FROM {registry} WHERE model = %s AND table_version = %s",  # noqa: S608
                [model, version],
            )
            dropped.append(int(version))
    return dropped


def load_table(
    storage: SnapshotStorage, config: PostgresConfig, model: str, table_version: int
) -> TableManifest:
    """Load a published table version and make it current (idempotent: a loaded one is reused)."""
    phases: dict[str, float] = {}
    with _timed(phases, "verify"):
        manifest = verify_table(storage, model, table_version)
    registry = qualified(config.schema_name, REGISTRY)
    try:
        with psycopg.connect(config.url) as connection:
            with connection.transaction():
                connection.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(registry)])
                for statement in registry_ddl(config.schema_name):
                    connection.execute(statement)
            loaded = connection.execute(
                f"SELECT 1 FROM {registry} WHERE model = %s AND table_version = %s",  # noqa: S608
                [model, table_version],
            ).fetchone()
            connection.commit()
            if loaded is None:
                _create_and_fill(connection, storage, config, manifest, phases)
            with _timed(phases, "switch"):
                _switch(connection, config, model, table_version)
            _drop_old(connection, config, model)
    except psycopg.Error as error:
        raise ScoreEngineError(f"loading {model} table {table_version} failed: {error}") from error
    # The phases ride on the record (`record.phases`) for whoever measures loads.
    log.info(
        "loaded %s table %d (%d rows): %s", model, table_version, manifest.rows,
        ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items()),
        extra={"phases": phases},
    )  # fmt: skip
    return manifest
