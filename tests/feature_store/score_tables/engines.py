"""Both score engines over one snapshot root, each PostgreSQL one in a schema of its own."""

from __future__ import annotations

import random
import uuid

from feature_store.registry import Registry
from feature_store.score_tables.duckdb_engine import DuckDBConfig, DuckDBEngine
from feature_store.score_tables.engine import ScoreEngine
from feature_store.score_tables.postgres_engine import PostgresEngine
from feature_store.score_tables.postgres_schema import PostgresConfig

ENGINES = ("duckdb", "postgres")


def make_engine(kind: str, registry: Registry, postgres_url: str) -> ScoreEngine:
    """An engine of `kind` that re-reads the current table on every query (PostgreSQL: one
    partition per part, two filled at once)."""
    if kind == "duckdb":
        return DuckDBEngine(registry.storage, DuckDBConfig(poll_interval_s=0.0))
    schema = f"scores_{uuid.uuid4().hex[:12]}"
    # One partition per part (the planted parts are tiny), filled two at a time.
    config = PostgresConfig(
        url=postgres_url,
        schema_name=schema,
        poll_interval_s=0.0,
        keep=2,
        load_workers=2,
        partition_rows=1,
    )
    return PostgresEngine(registry.storage, config)


def _leaf(rng: random.Random) -> str:
    """One random condition over the planted columns (tests/feature_store/planted.py)."""
    choices = [
        lambda: f"year {rng.choice(['<', '<=', '>', '>=', '==', '!='])} {rng.randint(1950, 2020)}",
        lambda: f"rating {rng.choice(['<', '>='])} {rng.uniform(0, 5):.3f}",
        lambda: f"price {rng.choice(['<', '>', '!='])} {rng.uniform(0, 31):.2f}",
        lambda: f"genres contains '{rng.choice(['Comedy', 'Drama', 'Action', 'Horror', 'Jazz'])}'",
        lambda: f"title contains '{rng.choice(['Title 1', 'Title', '3', 'x'])}'",
        lambda: f"title {rng.choice(['==', '!='])} 'Title {rng.randint(0, 9)}'",
        lambda: rng.choice(["is_new", "not is_new", "is_new == false"]),
        lambda: f"year {rng.choice(['in', 'not in'])} ({rng.randint(1950, 2019)}, 1977)",
    ]
    return rng.choice(choices)()


def random_filter(rng: random.Random, depth: int = 2) -> str:
    """A random expression of up to `depth` levels of not/and/or over `_leaf` conditions."""
    if depth == 0 or rng.random() < 0.35:
        return _leaf(rng)
    shape = rng.random()
    if shape < 0.2:
        return f"not ({random_filter(rng, depth - 1)})"
    joiner = "and" if shape < 0.6 else "or"
    return f"({random_filter(rng, depth - 1)}) {joiner} ({random_filter(rng, depth - 1)})"
