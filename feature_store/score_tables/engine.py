"""The query-engine role: answer a user's filtered top-k from the served score table.

One abstract base and one module per backend (`duckdb_engine`, `postgres_engine`), each with
a typed config chosen by its `type` field. The base does the shared work: it follows the
model's current table (re-checked at most every `poll_interval_s`; a table that fails
verification is refused and the one being served stays), compiles `where` to SQL for the
backend's dialect, and decides whether an answer is complete; the backends run the SQL.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from feature_store.layout import check_model_name
from feature_store.score_tables.errors import ScoreTableCorruptError, ScoreTableNotFoundError
from feature_store.score_tables.manifest import TableManifest
from feature_store.score_tables.sql_filter import Dialect, SqlFilter, compile_sql_filter

log = logging.getLogger(__name__)

COMPILED_FILTERS = 4096  # compiled `where`s kept per engine (all dropped when full)


@dataclass(frozen=True)
class TableRow:
    """One materialized row: the item, its score at build time and its rank for the user."""

    item: str
    score: float
    rank: int


@dataclass(frozen=True)
class TableAnswer:
    """A user's filtered top-k from one table version.

    `complete` says whether these rows are the exact filtered top-k of the whole catalog
    (k rows came back, or the table holds every item); `user_known` whether the table has
    the user at all.
    """

    model: str
    table_version: int
    snapshot_version: int
    user_known: bool
    complete: bool
    rows: tuple[TableRow, ...]


class TableGoneError(Exception):
    """A backend's table version vanished under a query (dropped after a switch): retry."""


class ScoreEngine(ABC):
    """A backend that serves score tables; one instance serves every model of a root."""

    dialect: Dialect

    def __init__(self, poll_interval_s: float) -> None:
        """Re-check each model's current table at most every `poll_interval_s` seconds."""
        self.poll_interval_s = poll_interval_s
        self._served: dict[str, TableManifest] = {}
        self._checked_at: dict[str, float] = {}
        self._refused: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self._refreshing: dict[str, threading.Lock] = {}
        self._conditions: dict[tuple[str, int, str], SqlFilter] = {}

    def served(self, model: str, *, wait: bool = False) -> TableManifest:
        """The manifest of the table answering for `model` now, following its current one."""
        check_model_name(model)
        served = self._served.get(model)
        stale = time.monotonic() - self._checked_at.get(model, -1e18) >= self.poll_interval_s
        if served is not None and not stale:
            return served
        with self._lock:
            refreshing = self._refreshing.setdefault(model, threading.Lock())
        # While one request checks (and maybe verifies) a new table, others keep the old one.
        if not refreshing.acquire(blocking=wait or served is None):
            assert served is not None
            return served
        try:
            return self._refresh(model, served)
        finally:
            refreshing.release()

    def _refresh(self, model: str, served: TableManifest | None) -> TableManifest:
        current = self._current_version(model)
        self._checked_at[model] = time.monotonic()
        if current is None:
            raise ScoreTableNotFoundError(f"model {model!r} has no score table")
        if served is not None and (
            current == served.table_version or (model, current) in self._refused
        ):
            return served
        try:
            manifest = self._open(model, current)
        except ScoreTableCorruptError as error:
            self._refused.add((model, current))
            log.error("score table %s %d refused: %s", model, current, error.message)
            if served is None:
                raise
            return served
        self._served[model] = manifest
        return manifest

    def top_k(self, model: str, user: str, k: int, where: str | None = None) -> TableAnswer:
        """The user's best `k` rows matching `where`, by score descending then item id."""
        manifest = self.served(model)
        try:
            return self._answer(manifest, user, k, where)
        except TableGoneError:
            self._checked_at.pop(model, None)
            return self._answer(self.served(model, wait=True), user, k, where)

    def _answer(self, manifest: TableManifest, user: str, k: int, where: str | None) -> TableAnswer:
        condition = self._condition(manifest, where) if where else None
        limit = min(k, manifest.top_n or manifest.items)
        rows = self._rows(manifest, user, condition, limit)
        known = len(rows) > 0 or self._has_user(manifest, user)
        return TableAnswer(
            model=manifest.model,
            table_version=manifest.table_version,
            snapshot_version=manifest.snapshot_version,
            user_known=known,
            complete=known and manifest.is_complete_for(len(rows), k),
            rows=tuple(TableRow(item, float(score), int(rank)) for item, score, rank in rows),
        )

    def _condition(self, manifest: TableManifest, where: str) -> SqlFilter:
        """`where` compiled for this table version's columns, once (parsing it took about a
        third of a PostgreSQL query's time in this process). A refused `where` raises each
        time and is not kept."""
        key = (manifest.model, manifest.table_version, where)
        condition = self._conditions.get(key)
        if condition is None:
            condition = compile_sql_filter(where, manifest.columns, self.dialect)
            if len(self._conditions) >= COMPILED_FILTERS:
                self._conditions.clear()
            self._conditions[key] = condition
        return condition

    @abstractmethod
    def _current_version(self, model: str) -> int | None:
        """The table version the backend should serve for `model` now (None: no table)."""

    @abstractmethod
    def _open(self, model: str, table_version: int) -> TableManifest:
        """Make a table version queryable (verified); `ScoreTableCorruptError` refuses it."""

    @abstractmethod
    def _rows(
        self, manifest: TableManifest, user: str, condition: SqlFilter | None, limit: int
    ) -> list[tuple[str, float, int]]:
        """(item_id, score, rank) of the user's best `limit` rows matching `condition`."""

    @abstractmethod
    def _has_user(self, manifest: TableManifest, user: str) -> bool:
        """Whether the table holds any row of `user`."""

    @abstractmethod
    def load(self, model: str, table_version: int) -> TableManifest:
        """Verify a published table version and make it the backend's current one."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
