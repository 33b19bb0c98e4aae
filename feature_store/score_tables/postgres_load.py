"""Load a score table version into PostgreSQL: verify, bulk COPY, index, switch, drop old.

1. every part's sha256 is checked first: a bad table never reaches the database;
2. the version's rows go into user_id range partitions (postgres_partitions.py), each
   created, filled with `COPY ... FROM STDIN (FORMAT csv, FREEZE)` (never row by row), given
   the covering index `(user_id, score DESC) INCLUDE (item_id, rank, <attributes>)` and
   ANALYZEd in a transaction of its own, up to `load_workers` at once;
3. one transaction creates the partitioned relation, attaches the partitions and their
   indexes and registers it: until then nothing refers to the partitions, so a crash leaves
   the current version serving (the next load drops the leftovers);
4. one transaction makes it current: the registry's `is_current` flags and the model's view
   change together, so readers see the old version or the new one;
5. versions beyond the `keep` newest are dropped.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from feature_store.score_tables.errors import ScoreEngineError, ScoreTableCorruptError
from feature_store.score_tables.manifest import TableManifest
from feature_store.score_tables.postgres_partitions import (
    INDEX_WORKERS,
    LoadCancelledError,
    PartitionFill,
    attach_sql,
    fill_partitions,
    plan_partitions,
)
from feature_store.score_tables.postgres_schema import (
    REGISTRY,
    PostgresConfig,
    qualified,
    registry_ddl,
    relation_name,
    view_name,
)
from feature_store.score_tables.versions import verify_table
from feature_store.storage import SnapshotStorage

log = logging.getLogger(__name__)


@contextmanager
def _timed(phases: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    phases[name] = time.perf_counter() - start


def _lock_key(text: str) -> int:
    """A signed 64-bit advisory-lock key for `text`."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def _drop_leftovers(connection: psycopg.Connection[Any], schema: str, name: str) -> None:
    """Drop what a crashed or failed load of this relation left: its parent, its partitions."""
    pattern = name.replace("_", "\\_") + "\\_p%"
    with connection.transaction():
        found = connection.execute(
            "SELECT relname FROM pg_class JOIN pg_namespace n ON n.oid = relnamespace "
            "WHERE nspname = %s AND relkind = 'r' AND relname LIKE %s",
            [schema, pattern],
        ).fetchall()
        connection.execute(f"DROP TABLE IF EXISTS {qualified(schema, name)}")
        for (relation,) in found:
            connection.execute(f"DROP TABLE IF EXISTS {qualified(schema, str(relation))}")


def _create_and_fill(
    connection: psycopg.Connection[Any],
    storage: SnapshotStorage,
    config: PostgresConfig,
    manifest: TableManifest,
    phases: dict[str, float],
) -> None:
    """Fill the version's partitions concurrently, then attach and register them at once."""
    schema = config.schema_name
    name = relation_name(manifest.model, manifest.table_version)
    partitions = plan_partitions(storage, manifest, name, config.partition_rows)
    _drop_leftovers(connection, schema, name)
    index_workers = INDEX_WORKERS if len(partitions) == 1 else 0
    fill = PartitionFill(config.url, schema, storage, manifest, index_workers)
    try:
        with _timed(phases, "partitions"):
            fill_partitions(fill, partitions, config.load_workers)
    except (psycopg.Error, ScoreTableCorruptError, LoadCancelledError):
        with suppress(psycopg.Error):  # the next load drops them too
            _drop_leftovers(connection, schema, name)
        raise
    with _timed(phases, "attach"), connection.transaction():
        for statement in attach_sql(schema, name, manifest.columns, partitions):
            connection.execute(statement)
        connection.execute(
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
