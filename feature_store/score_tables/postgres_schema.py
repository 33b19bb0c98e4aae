"""Where score tables live in PostgreSQL (spec: docs/score_tables.md).

    <schema>.tables                 one row per loaded table version: model, table_version,
                                    relation, manifest (jsonb), loaded_at, is_current
    <schema>."t_<hash>_<T>"         one table version, partitioned by range of user_id,
                                    covering index (user_id, score DESC)
                                    INCLUDE (item_id, rank, attributes...) on every partition
    <schema>."t_<hash>_<T>_pNNNNN"  its partition starting at part NNNNN
    <schema>."<model>"              a view of the current version, for people and tools

Names are derived from the (already checked) model name and version, never from input.
"""

from __future__ import annotations

import hashlib
import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from feature_store.layout import check_model_name
from feature_store.score_tables.sql_filter import quote_identifier

DEFAULT_SCHEMA = "velox_scores"
REGISTRY = "tables"
_MAX_IDENTIFIER = 63  # bytes: PostgreSQL truncates longer names


def _model_hash(model: str) -> str:
    return hashlib.sha256(check_model_name(model).encode()).hexdigest()[:16]


def relation_name(model: str, table_version: int) -> str:
    """The unquoted name of the relation holding one table version."""
    return f"t_{_model_hash(model)}_{table_version}"


def view_name(model: str) -> str:
    """The unquoted name of the model's current-version view (the model name when it fits)."""
    if len(check_model_name(model).encode()) <= _MAX_IDENTIFIER:
        return model
    return f"m_{_model_hash(model)}"


def qualified(schema: str, name: str) -> str:
    """`"schema"."name"`, both quoted."""
    return f"{quote_identifier(schema)}.{quote_identifier(name)}"


def registry_ddl(schema: str) -> list[str]:
    """Statements creating the schema and its registry table (idempotent)."""
    return [
        f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}",
        f"CREATE TABLE IF NOT EXISTS {qualified(schema, REGISTRY)} ("
        "model text NOT NULL, table_version integer NOT NULL, relation text NOT NULL, "
        "manifest jsonb NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(), "
        "is_current boolean NOT NULL DEFAULT false, PRIMARY KEY (model, table_version))",
    ]


class PostgresConfig(BaseModel):
    """Settings of the PostgreSQL engine (`type: postgres`, from `VELOX_SCORES_URL`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["postgres"] = "postgres"
    url: str = Field(pattern=r"^postgres(ql)?://")
    schema_name: str = Field(default=DEFAULT_SCHEMA, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    pool_size: int = Field(default=8, ge=1, le=256)
    keep: int = Field(default=2, ge=1, le=100)
    statement_timeout_ms: int = Field(default=5000, ge=1)
    poll_interval_s: float = Field(default=1.0, ge=0.0, le=3600.0)
    load_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    """Connections filling a version's partitions at once (default: this machine's cores)."""
    partition_rows: int = Field(default=250_000, ge=1)
    """Consecutive parts are gathered into partitions of at least this many rows."""
