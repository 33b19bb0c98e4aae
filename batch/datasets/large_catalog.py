"""A synthetic large catalog published directly as a snapshot: `velox synthetic-catalog`.

Training ALS on 10⁶ items is not what the retrieval cascade needs to be measured; a catalog
shaped like a trained one is. Item vectors lie around a few hundred topic directions with a
Zipf-like topic popularity, and their norms are log-normal, so a few items have large norms
(popular items score high for everyone) as in real factor models; the last feature is the
constant 1 that carries a bias, as in every Velox snapshot. Attributes: a category, a price
(5 % NULL), a year and a list column of tags, for filters. Users' batch weights point at
topics too, so each user has a real neighbourhood in the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from feature_store.snapshot_data import SnapshotData

N_TOPICS = 256
N_CATEGORIES = 50
N_TAGS = 20


@dataclass(frozen=True)
class CatalogSpec:
    """What to generate."""

    n_items: int = 1_000_000
    dim: int = 64
    n_users: int = 10_000
    seed: int = 0
    user_spread: float = 0.12
    """Noise around a user's topic, per dimension (items: 0.12). Users drawn like items have
    neighbourhoods in the catalog; at 0.25 a user is mostly a random direction, and retrieval
    must search much wider (BENCHMARKS.md shows both)."""


def _directions(
    rng: np.random.Generator, topics: NDArray[np.float32], n: int, spread: float
) -> tuple[NDArray[np.float32], NDArray[np.intp]]:
    popularity = 1.0 / np.arange(1, len(topics) + 1)
    chosen = rng.choice(len(topics), size=n, p=popularity / popularity.sum())
    rows = topics[chosen] + rng.standard_normal((n, topics.shape[1]), dtype=np.float32) * spread
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows, chosen


def _attributes(rng: np.random.Generator, topic: NDArray[np.intp]) -> pa.Table:
    n = len(topic)
    prices = np.round(rng.lognormal(3.0, 1.0, n), 2)
    tag_counts = rng.integers(0, 4, n)
    offsets = np.concatenate([[0], np.cumsum(tag_counts)]).astype(np.int32)
    tag_names = pa.array([f"tag{t}" for t in range(N_TAGS)], pa.string())
    tags = pa.ListArray.from_arrays(
        pa.array(offsets), tag_names.take(pa.array(rng.integers(0, N_TAGS, int(offsets[-1]))))
    )
    categories = pa.array([f"cat{c}" for c in range(N_CATEGORIES)], pa.string())
    return pa.table(
        {
            "category": categories.take(pa.array(topic % N_CATEGORIES)),
            "price": pa.array(prices, pa.float64(), mask=rng.random(n) < 0.05),
            "year": pa.array(rng.integers(1950, 2026, n), pa.int64()),
            "tags": tags,
        }
    )


def synthetic_catalog(spec: CatalogSpec) -> SnapshotData:
    """The snapshot data of a synthetic catalog (module doc); same spec, same data."""
    rng = np.random.default_rng(spec.seed)
    free = spec.dim - 1  # the last feature is the constant bias feature
    topics = rng.standard_normal((N_TOPICS, free), dtype=np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    directions, topic = _directions(rng, topics, spec.n_items, spread=0.12)
    features = np.empty((spec.n_items, spec.dim), dtype=np.float32)
    features[:, :free] = directions * rng.lognormal(0.0, 0.35, (spec.n_items, 1))
    features[:, free] = 1.0
    user_directions, _ = _directions(rng, topics, spec.n_users, spread=spec.user_spread)
    weights = np.empty((spec.n_users, spec.dim), dtype=np.float32)
    weights[:, :free] = user_directions * 2.0
    weights[:, free] = 3.0
    return SnapshotData(
        kind="mf",
        item_ids=[f"i{i}" for i in range(spec.n_items)],
        item_features=features,
        item_attributes=_attributes(rng, topic),
        user_ids=[f"u{u}" for u in range(spec.n_users)],
        user_weights=weights,
        user_counts=np.full(spec.n_users, 20, dtype=np.int64),
        prior_mean=weights.mean(axis=0, dtype=np.float64),
        lam=1.0,
        noise_std=1.0,
        extra={"dataset": "synthetic-catalog", "seed": spec.seed},
    )
