"""Planted snapshot data with known values, shared by the tests and their child processes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from feature_store.snapshot_data import SnapshotData

GENRES = ("Comedy", "Drama", "Action", "Horror")


def planted_attributes(n: int, rng: np.random.Generator) -> pa.Table:
    """Attributes of every supported kind; `title` and `price` have a planted null each."""
    titles: list[str | None] = [f"Title {i}" for i in range(n)]
    titles[0] = None
    prices: list[float | None] = [float(p) for p in np.round(rng.uniform(1, 30, n), 2)]
    prices[-1] = None
    genres = [[GENRES[(i + k) % len(GENRES)] for k in range(i % 3)] for i in range(n)]
    return pa.table(
        {
            "title": pa.array(titles, pa.string()),
            "year": pa.array(1950 + np.arange(n) % 70, pa.int64()),
            "rating": pa.array(rng.uniform(0, 5, n), pa.float64()),
            "price": pa.array(prices, pa.float64()),
            "genres": pa.array(genres, pa.list_(pa.string())),
            "is_new": pa.array(np.arange(n) % 2 == 0, pa.bool_()),
        }
    )


def planted_data(
    seed: int = 0,
    n: int = 40,
    m: int = 15,
    d: int = 6,
    *,
    attributes: bool = True,
    weights: bool = False,
    tag: str = "",
) -> SnapshotData:
    """A small snapshot whose every array is drawn from `seed` (same seed, same data)."""
    rng = np.random.default_rng(seed)
    model_weights: dict[str, NDArray[Any]] | None = None
    if weights:
        model_weights = {
            "encoder.weight": rng.normal(size=(d, 3)).astype(np.float32),
            "encoder.bias": rng.normal(size=d).astype(np.float64),
            "vocab": np.arange(5, dtype=np.int64),
        }
    return SnapshotData(
        kind="mf",
        item_ids=[f"item-{seed}-{i}" for i in range(n)],
        item_features=rng.normal(size=(n, d)).astype(np.float32),
        item_attributes=planted_attributes(n, rng) if attributes else None,
        user_ids=[f"user-{i}" for i in range(m)],
        user_weights=rng.normal(size=(m, d)).astype(np.float32),
        user_counts=rng.integers(0, 100, size=m).astype(np.int64),
        prior_mean=rng.normal(size=d),
        lam=float(rng.uniform(0.5, 2.0)),
        noise_std=float(rng.uniform(0.1, 1.0)),
        metrics={"rmse": float(rng.uniform(0.8, 1.0)), "ndcg@10": 0.25},
        training_cutoff=f"{1700000000000 + seed}-0",
        model_weights=model_weights,
        extra={"tag": tag, "rank": d},
    )
