"""A 10⁶-item catalog whose item vectors are *trained*, for the cascade's recall figures.

    python -m bench.bench_cascade --catalog trained [--train-events 10000000]

The synthetic catalog (batch/datasets/large_catalog.py) draws item vectors directly; trained
vectors have another geometry (most items have few events, so their vectors shrink towards
zero; norms follow popularity; directions are only as clustered as the data makes them).
Training Spark ALS at 10⁶ items does not fit this 2-core machine's time, so this module
fits the same model family on the CPU with torch: a biased matrix factorisation (squared
error on observed ratings, L2 on the rows used), on ratings drawn from the synthetic
catalog's own users and items — each event picks an item by a Zipf-like popularity (skewed
item counts, as in real logs), a user uniformly, and the rating is the true score plus noise.
The published snapshot then holds the trained vectors, never the generator's, laid out as
every Velox snapshot: item features [v_i, b_i, 1], user weights [u, 1, b_u].
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from batch.datasets.large_catalog import CatalogSpec, synthetic_catalog
from feature_store.snapshot_data import SnapshotData


def _events(
    truth: SnapshotData, n_events: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_items, n_users = len(truth.item_ids), len(truth.user_ids)
    popularity = 1.0 / (np.arange(1, n_items + 1) ** 0.9)
    items = rng.permutation(n_items)[
        rng.choice(n_items, size=n_events, p=popularity / popularity.sum())
    ]
    users = rng.integers(0, n_users, n_events)
    true_scores = np.einsum(
        "ij,ij->i", truth.item_features[items], truth.user_weights[users], dtype=np.float64
    )
    ratings = (true_scores - true_scores.mean()) / true_scores.std() + rng.normal(0, 0.5, n_events)
    return users, items, ratings.astype(np.float32)


def trained_catalog(
    spec: CatalogSpec, n_events: int, epochs: int = 6, reg: float = 0.02
) -> SnapshotData:
    """The synthetic catalog with its item and user vectors replaced by trained ones."""
    truth = synthetic_catalog(spec)
    rng = np.random.default_rng(spec.seed + 1)
    users, items, ratings = _events(truth, n_events, rng)
    torch.manual_seed(spec.seed)
    rank = spec.dim - 2
    item_vectors = torch.nn.Embedding(spec.n_items, rank + 1, sparse=True)  # [v_i, b_i]
    user_vectors = torch.nn.Embedding(spec.n_users, rank + 1, sparse=True)  # [u, b_u]
    for table in (item_vectors, user_vectors):
        torch.nn.init.normal_(table.weight, std=0.05)
    parameters = [*item_vectors.parameters(), *user_vectors.parameters()]
    optimiser = torch.optim.SparseAdam(parameters, lr=0.01)
    u_all, i_all, r_all = map(torch.from_numpy, (users, items, ratings))
    batch = 1 << 16
    for epoch in range(epochs):
        started, order, total = time.perf_counter(), torch.randperm(n_events), 0.0
        for start in range(0, n_events, batch):
            chosen = order[start : start + batch]
            u, i = user_vectors(u_all[chosen]), item_vectors(i_all[chosen])
            predicted = (u[:, :rank] * i[:, :rank]).sum(1) + u[:, rank] + i[:, rank]
            loss = ((predicted - r_all[chosen]) ** 2).mean() + reg * (
                (u**2).sum(1) + (i**2).sum(1)
            ).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()  # type: ignore[no-untyped-call]
            total += float(loss.detach()) * len(chosen)
        print(f"  epoch {epoch + 1}: loss {total / n_events:.4f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    with torch.no_grad():
        v = item_vectors.weight.numpy()
        w = user_vectors.weight.numpy()
    features = np.empty((spec.n_items, spec.dim), dtype=np.float32)
    features[:, : rank + 1], features[:, rank + 1] = v, 1.0
    weights = np.empty((spec.n_users, spec.dim), dtype=np.float32)
    weights[:, :rank], weights[:, rank], weights[:, rank + 1] = w[:, :rank], 1.0, w[:, rank]
    extra = {"dataset": "trained-catalog", "seed": spec.seed, "events": n_events}
    return replace(
        truth,
        item_features=features,
        user_weights=weights,
        prior_mean=weights.mean(axis=0, dtype=np.float64),
        extra=extra,
    )
