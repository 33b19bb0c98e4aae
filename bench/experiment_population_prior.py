"""Experiment (not the default): the head prior shaped like the population's weights.

    python -m bench.experiment_population_prior [--lam-factor F] [bench_bandits arguments]

The simulator's new-user prior is isotropic, N(w0, (noise²/λ) I). Here the learner's item
features are first put in a basis where the training users' ridge weights are isotropic:
with C the covariance of those weights (users with >= 20 labels) and C = R Rᵀ (Cholesky,
scaled to mean variance 1), the features become x' = Rᵀ x, so λI on the new weights is a prior
covariance proportional to C on the old ones; w0 and λ are then fitted again in that basis.
This is a reparametrisation a snapshot could publish without any change of contract, but
`velox train` does not do it, so the simulator does not either; this script patches the
environment builder and runs `bench.bench_bandits` unchanged. `--lam-factor F` multiplies the
fitted λ by F (a narrower prior for F > 1), to ask whether the prior's width, not only its shape,
is what holds the policies back.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys

import numpy as np
from numpy.typing import NDArray

from bench.bench_bandits import main
from jobs.simulation import environment
from jobs.simulation.head_prior import HeadPrior, _user_statistics, fit_head_prior
from velox.catalog import ItemMatrix

MIN_LABELS = 20
_basis: dict[str, NDArray[np.float64]] = {}


def population_prior(
    features: NDArray[np.float64],
    users: NDArray[np.int64],
    items: NDArray[np.int64],
    labels: NDArray[np.float64],
    *,
    seed: int = 0,
    lam_factor: float = 1.0,
) -> HeadPrior:
    """`fit_head_prior` in the basis where the fitted users' weights are isotropic.

    The fitted λ is then multiplied by `lam_factor` (> 1: a narrower prior around w0).
    """
    head = fit_head_prior(features, users, items, labels, seed=seed)
    n_users, dim = int(users.max()) + 1, features.shape[1]
    gram, moment = _user_statistics(features, users, items, labels, n_users)
    system = gram + head.lam * np.eye(dim)
    weights = np.linalg.solve(system, (moment + head.lam * head.w0)[:, :, None])[:, :, 0]
    active = np.bincount(users, minlength=n_users) >= MIN_LABELS
    spread = np.cov(weights[active].T)
    scale = np.trace(spread) / dim
    basis = np.linalg.cholesky(spread + 1e-9 * scale * np.eye(dim)) / np.sqrt(scale)
    _basis["R"] = basis
    whitened = fit_head_prior(features @ basis, users, items, labels, seed=seed)
    return dataclasses.replace(whitened, lam=whitened.lam * lam_factor)


class _WhitenedItems:
    """Stands in for `ItemMatrix` in the environment builder: features in the new basis."""

    @staticmethod
    def from_features(features: NDArray[np.float32]) -> ItemMatrix:
        whitened = features.astype(np.float64) @ _basis["R"]
        return ItemMatrix.from_features(whitened.astype(np.float32))


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


if __name__ == "__main__":
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--lam-factor", type=_positive, default=1.0)
    known, sys.argv[1:] = own.parse_known_args()  # the rest goes to bench_bandits
    prior = functools.partial(population_prior, lam_factor=known.lam_factor)
    # The builder looks both names up in its module when it runs.
    vars(environment).update(fit_head_prior=prior, ItemMatrix=_WhitenedItems)
    main()
