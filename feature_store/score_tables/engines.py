"""Pick and open the score engine the settings name; load a published table into it.

`VELOX_SCORES_URL=postgresql://...` selects PostgreSQL; without it the embedded DuckDB engine
reads the tables in place. The config is one typed model per backend, told apart by `type`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from feature_store.score_tables.duckdb_engine import DuckDBConfig, DuckDBEngine
from feature_store.score_tables.engine import ScoreEngine
from feature_store.score_tables.manifest import TableManifest
from feature_store.score_tables.postgres_engine import PostgresEngine
from feature_store.score_tables.postgres_schema import PostgresConfig
from feature_store.storage import SnapshotStorage, open_storage
from velox.settings import VeloxSettings

EngineConfig = Annotated[DuckDBConfig | PostgresConfig, Field(discriminator="type")]
"""Either backend's config; pydantic picks the class by the `type` field."""


def engine_config(settings: VeloxSettings) -> EngineConfig:
    """The engine config the settings select (PostgreSQL when `scores_url` is set)."""
    if settings.scores_url:
        return PostgresConfig(url=settings.scores_url, keep=settings.scores_keep)
    return DuckDBConfig()


def open_engine(storage: SnapshotStorage, config: EngineConfig) -> ScoreEngine:
    """An engine of the configured type serving the tables under `storage`."""
    if isinstance(config, PostgresConfig):
        return PostgresEngine(storage, config)
    return DuckDBEngine(storage, config)


def open_score_engine(settings: VeloxSettings) -> ScoreEngine:
    """The engine of these settings over their snapshot root."""
    storage = open_storage(settings.resolved_snapshot_root())
    return open_engine(storage, engine_config(settings))


def load_table_into_engine(
    settings: VeloxSettings, model: str, table_version: int
) -> TableManifest:
    """Verify a published table version and make the settings' engine serve it.

    PostgreSQL: COPY into a new relation, index, switch atomically, drop versions beyond
    `VELOX_SCORES_KEEP`. DuckDB: verification only (it reads the files CURRENT names).
    A table with a bad sha256 raises `ScoreTableCorruptError` and nothing changes.
    """
    engine = open_score_engine(settings)
    try:
        return engine.load(model, table_version)
    finally:
        engine.close()
