"""Scores recomputed from a snapshot by the closed form of ARCHITECTURE.md (float64)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from feature_store.registry import Registry
from feature_store.snapshot import Snapshot
from velox.posterior import closed_form_mean


def load(root: str, model: str = "movies", version: int | None = None) -> Snapshot:
    """A snapshot as the tests see it (loaded independently of the server)."""
    return Registry(root).load(model, version)


def expected_mean(
    snapshot: Snapshot, user: str, observations: Sequence[tuple[str, float]]
) -> NDArray[np.float64]:
    """w_u = (A0 + Σ x xᵀ)⁻¹ (A0 w0_u + Σ r x) over `observations` of (item, reward), with A0
    = λI + the user's Gram matrix if the snapshot has one (docs/snapshot_format.md), else λI."""
    rows = [snapshot.item_index[item] for item, _ in observations]
    features = snapshot.items.features[rows].astype(np.float64).reshape(len(rows), snapshot.dim)
    rewards = np.array([reward for _, reward in observations], dtype=np.float64)
    precision = snapshot.precision_for(user)
    if precision is None:
        return closed_form_mean(snapshot.w0_for(user), snapshot.lam, features, rewards)
    rhs = precision @ snapshot.w0_for(user) + features.T @ rewards
    return np.asarray(np.linalg.solve(precision + features.T @ features, rhs), dtype=np.float64)


def expected_score(
    snapshot: Snapshot, user: str, item: str, observations: Sequence[tuple[str, float]]
) -> float:
    """score(u, i) = dot(items.features[i], w_u), in float64."""
    row = snapshot.items.features[snapshot.item_index[item]].astype(np.float64)
    return float(row @ expected_mean(snapshot, user, observations))
