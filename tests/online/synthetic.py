"""Synthetic snapshots of a known shape, published through feature_store (tests and bench)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from feature_store.registry import Registry
from feature_store.snapshot_data import SnapshotData

GENRES = ["Action", "Comedy", "Drama", "Horror"]


def synthetic_snapshot(
    n_items: int = 40, dim: int = 6, n_users: int = 5, seed: int = 0, shift: float = 0.0
) -> SnapshotData:
    """Random item factors with attributes, known users with batch weights; `shift` moves
    every item feature (so two versions of a model give different scores)."""
    rng = np.random.default_rng(seed)
    features = (rng.standard_normal((n_items, dim)) + shift).astype(np.float32)
    weights = rng.standard_normal((n_users, dim)).astype(np.float32)
    attributes = pa.table(
        {
            "genre": [GENRES[i % len(GENRES)] for i in range(n_items)],
            "year": pa.array([1980 + i % 40 for i in range(n_items)], pa.int32()),
            "price": [float(i % 25) for i in range(n_items)],
        }
    )
    return SnapshotData(
        kind="mf",
        item_ids=[f"i{i}" for i in range(n_items)],
        item_features=features,
        item_attributes=attributes,
        user_ids=[f"known{u}" for u in range(n_users)],
        user_weights=weights,
        user_counts=np.full(n_users, 3, dtype=np.int64),
        prior_mean=weights.mean(axis=0).astype(np.float64),
        lam=2.0,
        noise_std=0.5,
        metrics={"rmse": 1.0},
    )


def publish(root: str, model: str, data: SnapshotData) -> int:
    """Publish and promote `data` as the next version of `model`; returns the version."""
    return Registry(root).publish(model, data).version
