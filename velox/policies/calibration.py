"""The default Thompson-sampling scale, calibrated from what a snapshot knows.

A new user's head starts at the prior N(w0, (noise_std² / λ) I). Its predictive spread of an
item's score is ``noise_std · ‖x_i‖ / sqrt(λ)``, the same in every direction of feature space.
The users the snapshot was trained on show how scores really spread across the population:
``Var_u(x_iᵀ w_u)`` over their weights. When the isotropic prior is wider than that (on
movielens-100k, 3 to 4 times: the features' directions are far from equally used, and the
constant and bias columns are large), a plain Thompson draw perturbs every score by more than
users differ, and the best of a whole catalog of perturbed scores is mostly noise: plain
Thompson sampling then earns less than greedy (BENCHMARKS.md, "Exploration").

The calibrated scale is the ratio of the two spreads, pooled over the catalog:

    scale = sqrt( mean_i Var_u(x_iᵀ w_u) / mean_i (noise_std² / λ) ‖x_i‖² ),   at most 1

so that a draw from the scaled prior spreads the catalog's scores as much as the population's
users do. It only shrinks exploration (a prior narrower than the population keeps scale 1),
and it leaves the mean, hence every score of the score contract, unchanged. Experts keep the
knob: ``thompson:<scale>`` is used as given.

>>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
>>> w = np.array([[0.1, 0.0], [-0.1, 0.0], [0.1, 0.0], [-0.1, 0.0]])
>>> round(calibrated_thompson_scale(x, w, lam=1.0, noise_std=1.0), 3)
0.071
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from velox.errors import DimensionError, InvalidInputError

__all__ = ["MAX_ITEMS", "MAX_USERS", "calibrated_thompson_scale"]

MAX_USERS = 1000
MAX_ITEMS = 10_000
"""Users and items taken (every k-th, deterministically) for the spreads: enough for a pooled
variance, at a bounded cost when a snapshot is loaded (at most MAX_ITEMS x MAX_USERS x d)."""


def calibrated_thompson_scale(
    features: ArrayLike, user_weights: ArrayLike, *, lam: float, noise_std: float
) -> float:
    """The calibrated posterior scale of Thompson sampling, in [0, 1] (module doc)."""
    items = np.asarray(features, dtype=np.float64)
    weights = np.asarray(user_weights, dtype=np.float64)
    if items.ndim != 2 or weights.ndim != 2 or items.shape[1] != weights.shape[1]:
        raise DimensionError(
            f"features (n, d) and user weights (m, d) must share d, got {items.shape} and "
            f"{weights.shape}"
        )
    if not (math.isfinite(lam) and lam > 0 and math.isfinite(noise_std) and noise_std >= 0):
        raise InvalidInputError(f"need lam > 0 and noise_std >= 0, got {lam!r}, {noise_std!r}")
    if weights.shape[0] < 2 or items.shape[0] == 0 or noise_std == 0.0:
        return 1.0
    items = items[:: -(-items.shape[0] // MAX_ITEMS)]
    scores = items @ weights[:: -(-weights.shape[0] // MAX_USERS)].T
    population = float(np.mean(np.var(scores, axis=1)))
    prior = noise_std * noise_std / lam * float(np.mean(np.einsum("ij,ij->i", items, items)))
    if not (math.isfinite(population) and prior > 0.0):
        return 1.0
    return min(1.0, math.sqrt(population / prior))
