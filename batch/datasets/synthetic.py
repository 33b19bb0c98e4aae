"""A synthetic ratings dataset with planted low-rank structure and known true factors.

reward = mu + b_u + b_i + u_u . v_i + noise, exactly linear (no clipping or rounding), so a
model's recovery of the planted item subspace can be measured. Items are drawn with a Zipf-like
popularity and users with a skewed activity, as in real logs. Events are generated and written
in chunks, so memory stays bounded for any size from 10^3 to 10^7 events and beyond.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from batch.datasets.files import DatasetFiles, DatasetWriter, dataset_layout, is_complete
from batch.errors import DatasetError

START_MICROS = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z
SPAN_MICROS = 90 * 86_400 * 1_000_000  # events spread over 90 days
CHUNK_EVENTS = 1_000_000


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate; user and item counts default to a ratio like MovieLens's."""

    n_events: int = 100_000
    rank: int = 8
    noise: float = 0.5
    seed: int = 42
    n_users: int | None = None
    n_items: int | None = None
    mean: float = 3.5
    bias_std: float = 0.3
    chunk_events: int = CHUNK_EVENTS

    def users(self) -> int:
        """Number of users (default: one per 50 events, at least 20)."""
        return self.n_users or int(np.clip(self.n_events // 50, 20, 200_000))

    def items(self) -> int:
        """Number of items (default: 4 sqrt(events), at least 20)."""
        return self.n_items or int(np.clip(4 * np.sqrt(self.n_events), 20, 50_000))


@dataclass(frozen=True)
class SyntheticTruth:
    """The planted model behind a generated dataset (rows follow `user_ids` / `item_ids`)."""

    files: DatasetFiles
    user_ids: list[str]
    item_ids: list[str]
    user_factors: NDArray[np.float64]
    item_factors: NDArray[np.float64]
    user_bias: NDArray[np.float64]
    item_bias: NDArray[np.float64]
    mean: float
    noise: float


def _popularity(n: int, exponent: float, rng: np.random.Generator) -> NDArray[np.float64]:
    weights = 1.0 / (np.arange(n) + 10.0) ** exponent
    return np.asarray(rng.permutation(weights / weights.sum()), dtype=np.float64)


def _items_table(
    item_ids: pa.Array, factors: NDArray[np.float64], rng: np.random.Generator
) -> pa.Table:
    n = len(item_ids)
    genre = np.argmax(np.abs(factors), axis=1)
    genres = pa.array([[f"genre-{g}"] for g in genre], pa.list_(pa.string()))
    return pa.table(
        {
            "item_id": item_ids,
            "title": pc.binary_join_element_wise("Item ", item_ids, ""),
            "year": pa.array(rng.integers(1950, 2024, n), pa.int32()),
            "genres": genres,
            "price": pa.array(np.round(rng.lognormal(2.5, 0.6, n), 2)),
        }
    )


def _ids(prefix: str, n: int) -> pa.Array:
    numbers = pc.cast(pa.array(np.arange(n)), pa.string())
    return pc.binary_join_element_wise(prefix, numbers, "")


def generate_synthetic(root: Path, spec: SyntheticSpec) -> SyntheticTruth:
    """Generate `spec.n_events` events under `root` (replacing what is there); the truth."""
    if spec.n_events < 1 or spec.rank < 1 or spec.noise < 0 or spec.chunk_events < 1:
        raise DatasetError(f"a synthetic dataset needs events >= 1, rank >= 1, noise >= 0: {spec}")
    rng = np.random.default_rng(spec.seed)
    n_users, n_items = spec.users(), spec.items()
    scale = 1.0 / np.sqrt(np.sqrt(spec.rank))  # each u . v then has unit variance
    user_factors = rng.normal(0.0, scale, (n_users, spec.rank))
    item_factors = rng.normal(0.0, scale, (n_items, spec.rank))
    user_bias = rng.normal(0.0, spec.bias_std, n_users)
    item_bias = rng.normal(0.0, spec.bias_std, n_items)
    user_ids, item_ids = _ids("u", n_users), _ids("i", n_items)
    user_p, item_p = _popularity(n_users, 0.5, rng), _popularity(n_items, 0.8, rng)
    with DatasetWriter(root) as writer:
        for start in range(0, spec.n_events, spec.chunk_events):
            size = min(spec.chunk_events, spec.n_events - start)
            chunk = np.random.default_rng([spec.seed, start])
            users = chunk.choice(n_users, size, p=user_p)
            items = chunk.choice(n_items, size, p=item_p)
            signal = np.einsum("ij,ij->i", user_factors[users], item_factors[items])
            reward = spec.mean + user_bias[users] + item_bias[items] + signal
            reward += chunk.normal(0.0, spec.noise, size)
            micros = START_MICROS + chunk.integers(0, SPAN_MICROS, size)
            writer.add_events(
                pa.table(
                    {
                        "event_id": _ids(f"e{start}-", size),
                        "user_id": user_ids.take(pa.array(users)),
                        "item_id": item_ids.take(pa.array(items)),
                        "reward": pa.array(reward),
                        "timestamp": pa.array(micros).cast(pa.timestamp("us", tz="UTC")),
                    }
                )
            )
        writer.set_items(_items_table(item_ids, item_factors, rng))
    return SyntheticTruth(
        files=dataset_layout(root),
        user_ids=user_ids.to_pylist(),
        item_ids=item_ids.to_pylist(),
        user_factors=user_factors,
        item_factors=item_factors,
        user_bias=user_bias,
        item_bias=item_bias,
        mean=spec.mean,
        noise=spec.noise,
    )


def load_synthetic(cache: Path, spec: SyntheticSpec) -> DatasetFiles:
    """The synthetic dataset of `spec` under `cache`, generated once and reused afterwards."""
    root = cache / f"synthetic-{spec.n_events}-r{spec.rank}-s{spec.seed}"
    if is_complete(root):
        return dataset_layout(root)
    return generate_synthetic(root, spec).files
