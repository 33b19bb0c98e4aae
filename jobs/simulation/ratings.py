"""The ratings a simulation starts from, as index arrays, read from a dataset's events."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq
from numpy.typing import NDArray

from velox.errors import InvalidInputError
from velox.settings import VeloxSettings

DATASETS = ("movielens-100k", "synthetic")


@dataclass(frozen=True)
class Ratings:
    """(user, item, rating) triples with users and items numbered 0..n-1."""

    users: NDArray[np.int64]
    items: NDArray[np.int64]
    values: NDArray[np.float64]
    user_ids: list[str]
    item_ids: list[str]

    @property
    def n_users(self) -> int:
        """Number of distinct users."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of distinct items."""
        return len(self.item_ids)


def ratings_from_events(path: str) -> Ratings:
    """Read `user_id`, `item_id`, `reward` from events Parquet (a file or partitioned folder)."""
    table = pq.read_table(path, columns=["user_id", "item_id", "reward"])
    user_ids, users = np.unique(table.column("user_id").to_numpy(), return_inverse=True)
    item_ids, items = np.unique(table.column("item_id").to_numpy(), return_inverse=True)
    return Ratings(
        users=users.astype(np.int64),
        items=items.astype(np.int64),
        values=table.column("reward").to_numpy().astype(np.float64),
        user_ids=[str(u) for u in user_ids],
        item_ids=[str(i) for i in item_ids],
    )


def load_ratings(
    dataset: str, settings: VeloxSettings, *, synthetic_events: int = 50_000
) -> Ratings:
    """Ratings of a built-in dataset, built into the dataset cache once by `batch.datasets`."""
    cache = settings.dataset_cache()
    if dataset == "movielens-100k":
        from batch.datasets.movielens import load_movielens_100k

        return ratings_from_events(load_movielens_100k(cache).events)
    if dataset == "synthetic":
        from batch.datasets.synthetic import SyntheticSpec, load_synthetic

        spec = SyntheticSpec(n_events=synthetic_events, seed=42)
        return ratings_from_events(load_synthetic(cache, spec).events)
    raise InvalidInputError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
