"""The production engine: score tables in PostgreSQL, one relation per version, switched atomically.

Tables are loaded by `postgres_load` (bulk COPY, covering index, switch in one transaction);
this module answers queries. It follows the registry's `is_current` row, re-read at most every
`poll_interval_s`; a version dropped under a running query is retried once on the new one.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from feature_store.score_tables.engine import ScoreEngine, TableGoneError
from feature_store.score_tables.errors import ScoreEngineError
from feature_store.score_tables.manifest import TableManifest
from feature_store.score_tables.postgres_load import load_table
from feature_store.score_tables.postgres_schema import (
    REGISTRY,
    PostgresConfig,
    qualified,
    relation_name,
)
from feature_store.score_tables.sql_filter import SqlFilter, has_user_sql, top_rows_sql
from feature_store.storage import SnapshotStorage


class ConnectionPool:
    """A fixed number of autocommit connections, opened on first use, replaced when broken."""

    def __init__(self, config: PostgresConfig) -> None:
        """Hand out at most `config.pool_size` connections to `config.url`."""
        self._config = config
        self._idle: queue.LifoQueue[psycopg.Connection[Any] | None] = queue.LifoQueue()
        for _ in range(config.pool_size):
            self._idle.put(None)

    def _connect(self) -> psycopg.Connection[Any]:
        options = f"-c statement_timeout={self._config.statement_timeout_ms}"
        try:
            return psycopg.connect(self._config.url, autocommit=True, options=options)
        except psycopg.Error as error:
            raise ScoreEngineError(f"cannot connect to PostgreSQL: {error}") from error

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Borrow a connection; a connection that broke is closed and not given out again."""
        connection = self._idle.get() or self._connect()
        try:
            yield connection
        except psycopg.OperationalError:
            connection.close()
            connection = None  # type: ignore[assignment]
            raise
        finally:
            self._idle.put(connection if connection is not None and not connection.closed else None)

    def close(self) -> None:
        """Close every idle connection."""
        for _ in range(self._config.pool_size):
            connection = self._idle.get()
            if connection is not None:
                connection.close()


class PostgresEngine(ScoreEngine):
    """Score tables loaded into PostgreSQL, queried through their covering indexes."""

    dialect = "postgres"

    def __init__(self, storage: SnapshotStorage, config: PostgresConfig) -> None:
        """Serve what the registry in `config.schema_name` says is current; load from `storage`."""
        super().__init__(config.poll_interval_s)
        self.storage = storage
        self.config = config
        self.pool = ConnectionPool(config)
        self._latest: dict[str, TableManifest] = {}

    def _execute(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        try:
            with self.pool.connection() as connection:
                return connection.execute(sql, params).fetchall()
        except pg_errors.UndefinedTable as error:
            raise TableGoneError(str(error)) from error
        except psycopg.Error as error:
            raise ScoreEngineError(f"PostgreSQL could not answer: {error}") from error

    def _current_version(self, model: str) -> int | None:
        sql = (
            f"SELECT manifest FROM {qualified(self.config.schema_name, REGISTRY)} "  # noqa: S608
            "WHERE model = %s AND is_current"
        )
        try:
            found = self._execute(sql, [model])
        except TableGoneError:
            return None  # nothing was ever loaded into this database
        if not found:
            return None
        manifest = TableManifest.from_dict(found[0][0])
        self._latest[model] = manifest
        return manifest.table_version

    def _open(self, model: str, table_version: int) -> TableManifest:
        # Verified before it was loaded (a table with a bad sha256 never becomes current).
        return self._latest[model]

    def _source(self, manifest: TableManifest) -> str:
        name = relation_name(manifest.model, manifest.table_version)
        return qualified(self.config.schema_name, name)

    def _rows(
        self, manifest: TableManifest, user: str, condition: SqlFilter | None, limit: int
    ) -> list[tuple[str, float, int]]:
        sql = top_rows_sql(self._source(manifest), condition, self.dialect)
        params = [user, *(condition.params if condition else ()), limit]
        return [(str(i), float(s), int(r)) for i, s, r in self._execute(sql, params)]

    def _has_user(self, manifest: TableManifest, user: str) -> bool:
        return len(self._execute(has_user_sql(self._source(manifest), self.dialect), [user])) > 0

    def load(self, model: str, table_version: int) -> TableManifest:
        """Verify, COPY, index and switch to `table_version`; drop versions beyond `keep`."""
        return load_table(self.storage, self.config, model, table_version)

    def close(self) -> None:
        """Close the pool's connections."""
        self.pool.close()
