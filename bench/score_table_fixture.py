"""Synthetic score tables for the query benchmarks: many users, a fixed catalog, fast to build.

Rows are made directly (not scored): user u's R items are distinct (an arithmetic progression
modulo the catalog size with a stride coprime to it), scores descend, and each row carries the
item's attributes: `price` uniform on [0, 100) with 2 % NULL (so `price < 10` keeps ~10 % and
`price < 1` ~1 % of the rows), `year` and a `genres` list.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from feature_store.score_tables import (
    TableManifest,
    part_name,
    publish_staged_table,
    table_schema,
    write_part,
)
from feature_store.storage import SnapshotStorage

GENRES = ("Action", "Comedy", "Drama", "Horror", "Jazz")
USERS_PER_PART = 10_000


def catalog_attributes(n_items: int, seed: int = 0) -> pa.Table:
    """Attributes of a catalog of `n_items`: price (some NULL), year, genres."""
    rng = np.random.default_rng(seed)
    price = rng.uniform(0, 100, n_items)
    missing = rng.random(n_items) < 0.02
    genres = [[GENRES[(i + j) % len(GENRES)] for j in range(i % 3)] for i in range(n_items)]
    return pa.table(
        {
            "price": pa.array(price, pa.float64(), mask=missing),
            "year": pa.array(1950 + np.arange(n_items) % 70, pa.int32()),
            "genres": pa.array(genres, pa.list_(pa.string())),
        }
    )


def user_name(u: int) -> str:
    """User ids sort like their numbers (parts are user_id ranges)."""
    return f"u{u:07d}"


def _part(
    first: int, users: int, rows: int, attributes: pa.Table, rng: np.random.Generator
) -> pa.Table:
    n_items = attributes.num_rows
    strides = np.array([s for s in range(1, 200) if np.gcd(s, n_items) == 1])
    start = rng.integers(0, n_items, users)
    stride = rng.choice(strides, users)
    items = (start[:, None] + np.arange(rows)[None, :] * stride[:, None]) % n_items
    scores = -np.sort(-rng.standard_normal((users, rows)), axis=1)
    names = np.array([user_name(u) for u in range(first, first + users)], dtype=object)
    item_ids = np.array([f"i{i}" for i in range(n_items)], dtype=object)
    keys = {
        "user_id": pa.array(np.repeat(names, rows), pa.string()),
        "rank": pa.array(np.tile(np.arange(1, rows + 1, dtype=np.int32), users)),
        "item_id": pa.array(item_ids[items.ravel()], pa.string()),
        "score": pa.array(scores.ravel()),
    }
    picked = attributes.take(pa.array(items.ravel()))
    return pa.table({**keys, **dict(zip(picked.column_names, picked.columns, strict=True))})


def build_table(
    storage: SnapshotStorage,
    model: str,
    users: int,
    rows: int,
    attributes: pa.Table,
    seed: int = 0,
) -> TableManifest:
    """Write and publish table version 1 of `model`: `users` x `rows` synthetic rows."""
    rng = np.random.default_rng(seed)
    schema = table_schema(attributes.schema)
    files = {}
    for index, first in enumerate(range(0, users, USERS_PER_PART)):
        part = _part(first, min(USERS_PER_PART, users - first), rows, attributes, rng).cast(schema)
        files[part_name(index)] = write_part(storage, model, 1, index, part)
    return publish_staged_table(
        storage,
        model,
        1,
        snapshot_version=1,
        top_n=rows,
        users=users,
        items=attributes.num_rows,
        weights="snapshot",
        attributes=attributes.schema,
        files=files,
    )
