"""Biased matrix factorization by alternating least squares, in numpy + scipy.sparse.

The simulator fits item features itself instead of calling Spark's ALS (batch/train_als.py):
a benchmark needs a fresh fit per seed (each seed holds out different users), and a Spark
session's start-up alone takes longer than this whole fit (< 1 s on ml-100k). The algorithm is
the one Spark runs: ALS with the weighted-λ regularization of Zhou et al. (2008), where each
row's ridge penalty is `reg` times its number of ratings, with user and item biases fitted
jointly by appending a constant feature on the other side.

Every per-row normal equation is built for all rows at once: the Gram matrices are one sparse
(rows x others) product with the flattened outer products of the other side's features, so
an iteration is two sparse-dense products and two batched solves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
from numpy.typing import NDArray

from velox.errors import InvalidInputError

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.int64]


@dataclass(frozen=True)
class BiasedFactors:
    """r̂(u, i) = mean + user_bias[u] + item_bias[i] + user_factors[u] · item_factors[i]."""

    mean: float
    user_factors: FloatArray
    user_bias: FloatArray
    item_factors: FloatArray
    item_bias: FloatArray

    def predict(self, users: IndexArray, items: IndexArray) -> FloatArray:
        """Predictions for (user, item) index pairs."""
        dots = np.einsum("ij,ij->i", self.user_factors[users], self.item_factors[items])
        predicted: FloatArray = self.mean + self.user_bias[users] + self.item_bias[items] + dots
        return predicted

    def predict_all(self, users: IndexArray) -> FloatArray:
        """Predictions of the given users for every item, one row per user."""
        scores = self.user_factors[users] @ self.item_factors.T
        return scores + self.user_bias[users, None] + self.item_bias[None, :] + self.mean

    def item_features(self) -> NDArray[np.float32]:
        """Item features [v_i, 1, b_i]: with user weights [u_u, mean + b_u, 1] the dot product
        equals `predict` (the score contract: biases folded into the features).

        The global mean rides on the user side so that every feature is centred and of the
        same scale as the factors: the head's prior λI is isotropic, and a feature near 3.5
        would make its posterior (and any exploration driven by it) far wider along it.
        """
        ones = np.ones((self.item_factors.shape[0], 1))
        columns = [self.item_factors, ones, self.item_bias[:, None]]
        return np.hstack(columns).astype(np.float32)

    def user_weights(self) -> FloatArray:
        """User weights [u_u, mean + b_u, 1] matching `item_features`."""
        ones = np.ones((self.user_factors.shape[0], 1))
        return np.hstack([self.user_factors, (self.mean + self.user_bias)[:, None], ones])


def ridge_rows(
    incidence: sp.csr_matrix,
    other: FloatArray,
    reg: float,
    rhs: FloatArray,
    *,
    weight: float = 1.0,
    base: FloatArray | None = None,
) -> FloatArray:
    """Per row: (base + weight · Σ f fᵀ + reg·n·I)⁻¹ rhs_row, the sum over the row's rated
    others f and n their number (Spark's weighted-λ); `base` is a Gram matrix every row shares.
    """
    width = other.shape[1]
    outer = (other[:, :, None] * other[:, None, :]).reshape(other.shape[0], width * width)
    gram = weight * np.asarray(incidence @ outer).reshape(-1, width, width)
    if base is not None:
        gram += base
    counts = np.asarray(incidence.sum(axis=1)).ravel()
    gram += (reg * np.maximum(counts, 1.0))[:, None, None] * np.eye(width)
    solved = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]
    return np.asarray(solved, dtype=np.float64)


def solve_rows(
    incidence: sp.csr_matrix, targets: sp.csr_matrix, other: FloatArray, reg: float
) -> FloatArray:
    """Ridge solution per row: (Σ f fᵀ + reg·n·I)⁻¹ Σ t f over the row's rated others."""
    return ridge_rows(incidence, other, reg, np.asarray(targets @ other))


def fit_biased_als(
    users: IndexArray,
    items: IndexArray,
    values: FloatArray,
    n_users: int,
    n_items: int,
    *,
    rank: int = 16,
    reg: float = 0.1,
    iterations: int = 15,
    seed: int = 0,
) -> BiasedFactors:
    """Fit mean, biases and rank-`rank` factors to the (user, item, value) triples."""
    if values.shape[0] == 0:
        raise InvalidInputError("cannot factorize an empty set of ratings")
    if rank < 1 or iterations < 1 or reg <= 0.0:
        raise InvalidInputError("rank and iterations must be >= 1 and reg > 0")
    rng = np.random.default_rng(seed)
    mean = float(values.mean())
    ones = np.ones(values.shape[0])
    by_user = sp.csr_matrix((ones, (users, items)), shape=(n_users, n_items))
    by_item = by_user.T.tocsr()
    user_part = rng.normal(0.0, 0.1, (n_users, rank + 1))
    item_part = rng.normal(0.0, 0.1, (n_items, rank + 1))
    user_part[:, rank] = 0.0
    item_part[:, rank] = 0.0
    for _ in range(iterations):
        residual = values - mean - item_part[items, rank]
        fixed = np.hstack([item_part[:, :rank], np.ones((n_items, 1))])
        targets = sp.csr_matrix((residual, (users, items)), shape=(n_users, n_items))
        user_part = solve_rows(by_user, targets, fixed, reg)
        residual = values - mean - user_part[users, rank]
        fixed = np.hstack([user_part[:, :rank], np.ones((n_users, 1))])
        targets = sp.csr_matrix((residual, (items, users)), shape=(n_items, n_users))
        item_part = solve_rows(by_item, targets, fixed, reg)
    return BiasedFactors(
        mean=mean,
        user_factors=user_part[:, :rank].copy(),
        user_bias=user_part[:, rank].copy(),
        item_factors=item_part[:, :rank].copy(),
        item_bias=item_part[:, rank].copy(),
    )
