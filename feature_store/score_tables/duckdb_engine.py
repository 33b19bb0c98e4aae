"""The embedded engine: DuckDB queries a table's Parquet files where they lie (no server).

Each table version is checked (every part's sha256) once, when it first becomes current;
queries then read the verified files in place. Parts are sorted by user_id, so DuckDB skips
every row group whose user_id range does not hold the user.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from feature_store.score_tables.engine import ScoreEngine, TableGoneError
from feature_store.score_tables.errors import ScoreEngineError
from feature_store.score_tables.layout import USER_ID, table_dir
from feature_store.score_tables.manifest import TableManifest
from feature_store.score_tables.sql_filter import SqlFilter, has_user_sql, top_rows_sql
from feature_store.score_tables.versions import current_table_version, verify_table
from feature_store.storage import LocalStorage, SnapshotStorage


class DuckDBConfig(BaseModel):
    """Settings of the embedded DuckDB engine (`type: duckdb`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["duckdb"] = "duckdb"
    threads: int = Field(default=1, ge=1, le=256)
    poll_interval_s: float = Field(default=1.0, ge=0.0, le=3600.0)


@dataclass(frozen=True)
class PartIndex:
    """Which part holds a user: parts hold disjoint, ascending user_id ranges (the format)."""

    files: list[str]
    first_users: list[str] | None  # None: a part without statistics, every query reads all

    @classmethod
    def of(cls, files: list[str]) -> PartIndex:
        """Read each part's smallest user id from its Parquet footer statistics."""
        firsts = []
        for path in files:
            metadata = pq.ParquetFile(path).metadata
            column = metadata.schema.to_arrow_schema().get_field_index(USER_ID)
            groups = [metadata.row_group(g).column(column) for g in range(metadata.num_row_groups)]
            stats = [group.statistics for group in groups]
            if not stats or any(s is None or not s.has_min_max for s in stats):
                return cls(files, None)
            firsts.append(min(str(s.min) for s in stats))
        return cls(files, firsts)

    def files_for(self, user: str) -> list[str]:
        """The part whose range can hold `user` (all parts when the ranges are unknown)."""
        if self.first_users is None:
            return self.files
        index = max(bisect.bisect_right(self.first_users, user) - 1, 0)
        return [self.files[index]]


class DuckDBEngine(ScoreEngine):
    """Score tables of a local snapshot root, queried in place by an in-process DuckDB."""

    dialect = "duckdb"

    def __init__(self, storage: SnapshotStorage, config: DuckDBConfig) -> None:
        """Serve the tables under `storage` (a local root: DuckDB reads the files directly)."""
        super().__init__(config.poll_interval_s)
        if not isinstance(storage, LocalStorage):
            raise ScoreEngineError(
                f"the DuckDB score engine reads local files; {storage.description} is not local"
            )
        self.storage = storage
        self._database = duckdb.connect(config={"threads": config.threads})
        self._database.execute("SET enable_object_cache = true")  # Parquet footers, once
        self._cursors = threading.local()
        self._parts: dict[tuple[str, int], PartIndex] = {}

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor (a DuckDB connection object is not shared across threads)."""
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._cursors, "cursor", None)
        if cursor is None:
            cursor = self._database.cursor()
            self._cursors.cursor = cursor
        return cursor

    def _current_version(self, model: str) -> int | None:
        return current_table_version(self.storage, model)

    def _open(self, model: str, table_version: int) -> TableManifest:
        manifest = verify_table(self.storage, model, table_version)
        directory = Path(self.storage.root) / table_dir(model, table_version)
        self._parts[(model, table_version)] = PartIndex.of(
            [str(directory / name) for name in manifest.files]
        )
        return manifest

    def _files(self, manifest: TableManifest, user: str) -> list[str]:
        return self._parts[(manifest.model, manifest.table_version)].files_for(user)

    def _execute(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        try:
            return self._cursor().execute(sql, params).fetchall()
        except duckdb.IOException as error:  # the version's files were deleted under us
            raise TableGoneError(str(error)) from error
        except duckdb.Error as error:
            raise ScoreEngineError(f"DuckDB could not answer: {error}") from error

    def _rows(
        self, manifest: TableManifest, user: str, condition: SqlFilter | None, limit: int
    ) -> list[tuple[str, float, int]]:
        files = self._files(manifest, user)
        sql = top_rows_sql("read_parquet(?)", condition, self.dialect)
        params = [files, user, *(condition.params if condition else ()), limit]
        return [(str(i), float(s), int(r)) for i, s, r in self._execute(sql, params)]

    def _has_user(self, manifest: TableManifest, user: str) -> bool:
        files = self._files(manifest, user)
        return len(self._execute(has_user_sql("read_parquet(?)", self.dialect), [files, user])) > 0

    def load(self, model: str, table_version: int) -> TableManifest:
        """Nothing to copy: verify the version (DuckDB follows CURRENT, as written by publish)."""
        return verify_table(self.storage, model, table_version)

    def close(self) -> None:
        """Close the database."""
        self._database.close()
