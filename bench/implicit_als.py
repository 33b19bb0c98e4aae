"""Implicit ALS (Hu, Koren & Volinsky 2008) in numpy, tuned on a validation part: a baseline.

The `implicit` package is not a dependency; this is its model: user and item factors fitted to
the preference p = 1 for every rated pair and 0 elsewhere, with confidence 1 + alpha where
rated and 1 elsewhere, ridge penalty `reg` on every factor row (plain, not weighted by the
row's count). The grid is searched on the validation rows of a split (model fitted on its
train rows), and the chosen setting is refitted on train + validation and scored on test,
with the same ranking code, users, items and exclusions as `velox train`'s protocol.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import scipy.sparse as sp  # type: ignore[import-untyped]
from numpy.typing import NDArray

from batch.evaluate import UserRanking, user_ranking
from batch.prepare import ITEM, REWARD, USER
from batch.splits import HELD_OUT, PART, TEST, VALIDATION

FloatArray = NDArray[np.float64]
GRID = {"factors": (16, 32, 64), "reg": (3.0, 10.0, 30.0), "alpha": (1.0, 2.5, 5.0)}
ITERATIONS = 10


@dataclass(frozen=True)
class Tuned:
    """The chosen setting, every setting's validation NDCG, and the test ranking."""

    setting: dict[str, float]
    validation: dict[str, float]
    test: UserRanking


def _solve(incidence: sp.csr_matrix, other: FloatArray, reg: float, alpha: float) -> FloatArray:
    """Every row's factors given the other side's (one half-step of implicit ALS)."""
    width = other.shape[1]
    outer = (other[:, :, None] * other[:, None, :]).reshape(other.shape[0], width * width)
    gram = alpha * np.asarray(incidence @ outer).reshape(-1, width, width)
    gram += other.T @ other + reg * np.eye(width)
    rhs = (1.0 + alpha) * np.asarray(incidence @ other)
    return np.asarray(np.linalg.solve(gram, rhs[:, :, None])[:, :, 0], dtype=np.float64)


def fit(
    incidence: sp.csr_matrix, factors: int, reg: float, alpha: float, seed: int = 0
) -> tuple[FloatArray, FloatArray]:
    """User and item factors of implicit ALS on a users x items 0/1 incidence matrix."""
    rng = np.random.default_rng(seed)
    items = rng.normal(0.0, 0.01, (incidence.shape[1], factors))
    by_item = incidence.T.tocsr()
    users = np.zeros((incidence.shape[0], factors))
    for _ in range(ITERATIONS):
        users = _solve(incidence, items, reg, alpha)
        items = _solve(by_item, users, reg, alpha)
    return users, items


def _stage(rows: pa.Table, held: int, shape: tuple[int, int]) -> tuple[pa.Table, sp.csr_matrix]:
    """Rows with `test` = part == held (later parts dropped), and the training incidence."""
    part = rows.column(PART).to_numpy()
    kept = rows.filter(pa.array(part <= held))
    is_test = kept.column(PART).to_numpy() == held
    kept = kept.append_column(TEST, pa.array(is_test))
    train = ~is_test
    users, items = kept.column(USER).to_numpy()[train], kept.column(ITEM).to_numpy()[train]
    incidence = sp.csr_matrix((np.ones(users.size), (users, items)), shape=shape)
    incidence.data[:] = 1.0  # repeated pairs are one interaction
    return kept, incidence


def _known(rows: pa.Table, incidence: sp.csr_matrix) -> tuple[pa.Table, NDArray[np.bool_]]:
    """Rows of users and items with a training event (as batch.head_choice), and the items."""
    users_known = np.asarray(incidence.sum(axis=1)).ravel() > 0
    items_known = np.asarray(incidence.sum(axis=0)).ravel() > 0
    keep = users_known[rows.column(USER).to_numpy()] & items_known[rows.column(ITEM).to_numpy()]
    return rows.filter(pa.array(keep)), items_known


def score(
    rows: pa.Table, held: int, shape: tuple[int, int], setting: dict[str, float], k: int
) -> UserRanking:
    """Fit on the parts before `held`, rank for the users of part `held` (relevant: a rating
    above the mean training rating, as `velox train` judges it)."""
    kept, incidence = _stage(rows, held, shape)
    train = ~kept.column(TEST).to_numpy(zero_copy_only=False)
    relevant_above = float(kept.column(REWARD).to_numpy()[train].mean())
    kept, candidates = _known(kept, incidence)
    users, items = fit(incidence, int(setting["factors"]), setting["reg"], setting["alpha"])
    return user_ranking(
        items, users, kept, k=k, relevant_above=relevant_above, candidates=candidates
    )


def tune(rows: pa.Table, shape: tuple[int, int], k: int) -> Tuned:
    """Search GRID on the validation part, then score the best setting on the test part.

    `rows` are (u, i, r, part) of one split.
    """
    validation: dict[str, float] = {}
    settings = [
        dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())
    ]
    for setting in settings:
        found = score(rows, VALIDATION, shape, setting, k)
        validation[str(setting)] = float(found.ndcg.mean())
    best = max(settings, key=lambda s: validation[str(s)])
    return Tuned(best, validation, score(rows, HELD_OUT, shape, best, k))
