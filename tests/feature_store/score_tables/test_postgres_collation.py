"""PostgreSQL answers ties in the score contract's order (item_id ascending, bytewise) even in a
database whose collation sorts text otherwise (ICU en-US: "a" < "B"; bytewise: "B" < "a")."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import psycopg
import pytest
from psycopg import sql

from feature_store.registry import Registry
from feature_store.score_tables.postgres_engine import PostgresEngine
from feature_store.score_tables.postgres_schema import PostgresConfig
from tests.feature_store.planted import planted_data
from tests.feature_store.score_tables.planted_table import brute_force_top_k, publish_planted_table
from tests.support.postgres_database import ADMIN_URL, database_url

MODEL = "tied"
ITEMS = ["b", "B", "a", "A", "ab", "aB", "Ab", "_x"]


@pytest.fixture
def en_us_url() -> Iterator[str]:
    """A throwaway database whose default collation is ICU en-US (case-insensitive first)."""
    name = f"velox_test_icu_{uuid.uuid4().hex[:8]}"
    create = "CREATE DATABASE {} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL(create).format(sql.Identifier(name)))
    try:
        yield database_url(name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


def test_ties_follow_the_score_contract_under_a_locale_collation(
    tmp_path: Path, en_us_url: str
) -> None:
    """Every item has the same features, so every score ties: the answer is the ids in
    Python's (bytewise) order, which the database's own collation would not give."""
    with psycopg.connect(en_us_url) as connection:
        locale_order = connection.execute(
            "SELECT id FROM unnest(%s::text[]) AS id ORDER BY id", [ITEMS]
        ).fetchall()
    assert [row[0] for row in locale_order] != sorted(ITEMS)  # the database does differ
    data = planted_data(seed=3, n=len(ITEMS), m=4, attributes=False)
    same = np.tile(data.item_features[:1], (len(ITEMS), 1))
    registry = Registry(str(tmp_path / "snapshots"))
    registry.publish(MODEL, replace(data, item_ids=ITEMS, item_features=same))
    manifest = publish_planted_table(registry, MODEL, top_n=None)
    engine = PostgresEngine(registry.storage, PostgresConfig(url=en_us_url, poll_interval_s=0.0))
    try:
        engine.load(MODEL, manifest.table_version)
        answer = engine.top_k(MODEL, "user-1", len(ITEMS))
    finally:
        engine.close()
    expected = brute_force_top_k(registry.load(MODEL), "user-1", len(ITEMS), None)
    assert [item for item, _ in expected] == sorted(ITEMS)
    assert [row.item for row in answer.rows] == sorted(ITEMS)
