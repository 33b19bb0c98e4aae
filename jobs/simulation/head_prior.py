"""The online head's prior for new users, fitted on the training users' labelled history.

The service starts an unseen user at the population prior: mean `w0`, precision `lam`, noise
`noise_std` (the ridge head of ARCHITECTURE.md). Here they are fitted the way a snapshot's would
be, from the training users only:

* `w0`: the pooled least-squares fit of every training label on its item's features (the
  population's linear model);
* `lam`: the grid value whose per-user posterior means, each fitted on a random half of that
  user's labels starting from `w0`, predict the other half best (squared error);
* `noise_std`: that held-out RMSE, the spread of a label around a posterior-mean prediction;
* `thompson_scale`: default Thompson sampling's calibrated scale
  (`velox.policies.calibration`), from the training users' posterior means on all their labels
  at the chosen λ, as a snapshot's users.arrow holds them.

All per-user normal equations are built at once from one sparse product (see factorize.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
from numpy.typing import NDArray

from velox.errors import InvalidInputError
from velox.policies.calibration import calibrated_thompson_scale

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.int64]

LAM_GRID = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


@dataclass(frozen=True)
class HeadPrior:
    """The prior of a new user's head and the validation error of each grid value of λ."""

    w0: FloatArray
    lam: float
    noise_std: float
    validation_rmse: dict[float, float]
    thompson_scale: float


def _user_statistics(
    features: FloatArray, users: IndexArray, items: IndexArray, labels: FloatArray, n_users: int
) -> tuple[FloatArray, FloatArray]:
    """Per-user Σ x xᵀ (n_users, d, d) and Σ y x (n_users, d)."""
    n_items, dim = features.shape
    incidence = sp.csr_matrix((np.ones(labels.shape[0]), (users, items)), shape=(n_users, n_items))
    targets = sp.csr_matrix((labels, (users, items)), shape=(n_users, n_items))
    outer = (features[:, :, None] * features[:, None, :]).reshape(n_items, dim * dim)
    gram = np.asarray(incidence @ outer).reshape(n_users, dim, dim)
    return gram, np.asarray(targets @ features)


def fit_head_prior(
    features: FloatArray,
    users: IndexArray,
    items: IndexArray,
    labels: FloatArray,
    *,
    lam_grid: tuple[float, ...] = LAM_GRID,
    seed: int = 0,
) -> HeadPrior:
    """Fit w0, choose λ on held-out halves of each user's labels, and measure noise_std."""
    if labels.shape[0] < 2 or not lam_grid or min(lam_grid) <= 0.0:
        raise InvalidInputError("need at least two labels and a grid of positive lambdas")
    if np.ptp(labels) == 0.0:
        raise InvalidInputError("every training label is the same: nothing to learn a head from")
    dim = features.shape[1]
    rows = features[items]
    w0: FloatArray = np.linalg.lstsq(rows, labels, rcond=None)[0].astype(np.float64)
    n_users = int(users.max()) + 1
    held_out = np.random.default_rng(seed).random(labels.shape[0]) < 0.5
    fit = ~held_out
    gram, moment = _user_statistics(features, users[fit], items[fit], labels[fit], n_users)
    rmse: dict[float, float] = {}
    for lam in lam_grid:
        system = gram + lam * np.eye(dim)
        weights = np.linalg.solve(system, (moment + lam * w0)[:, :, None])[:, :, 0]
        errors = np.einsum("ij,ij->i", rows[held_out], weights[users[held_out]]) - labels[held_out]
        rmse[float(lam)] = float(np.sqrt(np.mean(errors * errors)))
    best = min(rmse, key=rmse.__getitem__)
    gram, moment = _user_statistics(features, users, items, labels, n_users)
    trained = np.unique(users)
    system = gram[trained] + best * np.eye(dim)
    user_weights = np.linalg.solve(system, (moment[trained] + best * w0)[:, :, None])[:, :, 0]
    scale = calibrated_thompson_scale(features, user_weights, lam=best, noise_std=rmse[best])
    return HeadPrior(
        w0=w0, lam=best, noise_std=rmse[best], validation_rmse=rmse, thompson_scale=scale
    )
