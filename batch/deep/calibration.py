"""Calibrate the tower's content-only path against its id path (issue 20, item cold start).

Trained with id dropout, the tower's output for an item on the unseen id row is close to the
mean of the id path's outputs over items with that content: shrunk towards the average item,
and spread over fewer directions. Ranked among all items, a new item then rarely reaches a top
list that the known items' id-based outputs, spread wider, fill. The calibration maps the
unseen row's raw output o to `A o + t`, chosen over the items with training events so that the
content-only outputs get the id path's mean and covariance:

    A = S_id^(1/2) (S_c + eps I)^(-1/2),    t = mean_id - A mean_c,

(S_id, S_c the covariances of the id path's and the content path's outputs, eps = `RIDGE`
times the mean eigenvalue of S_c, so that directions the content path hardly moves are not
blown up from noise). With eps = 0 every linear read-out of the output, hence every user's
score, has the same spread for new items as for known ones: they compete on the same scale.
It is an affine map of the tower's output, so features stay f(x; theta) and the score a dot
product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from numpy.typing import NDArray

from feature_store.tower.encode import EncodedItems
from feature_store.tower.network import ItemTower, tensors
from feature_store.tower.spec import TowerSpec

RIDGE = 0.1
"""eps over the mean eigenvalue of the content path's covariance (module doc). In scratch runs
on the ml-100k cold-start split (BENCHMARKS.md, issue 20), eps = 0 gave the new items (10 % of
the catalog) 34-46 % of the top-10 slots, amplifying near-constant content directions; 0.1 gave
29-32 % at nearly the same cold NDCG@10."""


def _root(matrix: NDArray[np.float64], power: float) -> NDArray[np.float64]:
    values, vectors = np.linalg.eigh(matrix)
    root: NDArray[np.float64] = (vectors * np.clip(values, 1e-12, None) ** power) @ vectors.T
    return root


def matched_covariance(
    with_ids: NDArray[np.float64], content_only: NDArray[np.float64], ridge: float = RIDGE
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(A, t) with `content_only @ A.T + t` of the mean and (ridge 0) covariance of `with_ids`."""
    spread = np.atleast_2d(np.cov(with_ids, rowvar=False))
    own = np.atleast_2d(np.cov(content_only, rowvar=False))
    own = own + ridge * max(float(np.trace(own)) / len(own), 1e-12) * np.eye(len(own))
    matrix = _root(spread, 0.5) @ _root(own, -0.5)
    shift = with_ids.mean(axis=0) - matrix @ content_only.mean(axis=0)
    return matrix, shift


def calibrate_unseen(
    state: dict[str, NDArray[np.float32]],
    spec: TowerSpec,
    items: EncodedItems,
    seen: NDArray[np.bool_],
) -> TowerSpec:
    """`spec` with the unseen row's calibration, measured on the `seen` rows of `items` (the
    items with training events, on their id rows)."""
    tower = ItemTower(replace(spec, unseen_calibration=None), state["ids.weight"].shape[0])
    tower.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    picked = EncodedItems(
        items.tokens[seen], items.words[seen], items.numbers[seen], items.ids[seen]
    )
    inputs = tensors(picked)
    with torch.inference_mode():
        with_ids = tower.eval()(*inputs).double().numpy()
        content_only = tower(*inputs[:3], torch.zeros_like(inputs[3])).double().numpy()
    matrix, shift = matched_covariance(with_ids, content_only)
    return replace(spec, unseen_calibration=[*matrix.tolist(), shift.tolist()])


SPREADS = tuple(np.linspace(0.0, 3.0, 31))
"""Candidate spreads alpha of `share_matched_spread`: 0 puts every new item at the mean known
item, 1 keeps the content predictions' own spread (shrunk: they are conditional means), more
widens it. On the ml-100k cold-start bench the hybrid chose 1.7-1.8 (BENCHMARKS.md)."""


def top_share(
    scores: NDArray[np.float64],
    marked: NDArray[np.bool_],
    rated: tuple[NDArray[np.int64], NDArray[np.int64]],
    k: int = 10,
) -> float:
    """Share of every row's top-`k` columns of `scores` (users x items) that are `marked`,
    the `rated` (user, item) pairs left out (as a user's training items are)."""
    scores = scores.copy()
    scores[rated] = -np.inf
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return float(marked[top].mean())


def share_matched_spread(
    known: NDArray[np.float64],
    folds: Sequence[NDArray[np.int64]],
    content: NDArray[np.float64],
    users: NDArray[np.float64],
    rated: tuple[NDArray[np.int64], NDArray[np.int64]],
    k: int = 10,
) -> tuple[float, float, float]:
    """alpha in `SPREADS` with which each fold's rows of `known` (item features of the items
    with training events), replaced by `mean + alpha (content - mean)` (`content`: every
    known item's content-only features, centred on mean, the known items' mean), take about
    the share of the users' top-`k` lists (scores `users @ features.T`, each user's `rated`
    items left out) that they take with their own features, on average over the folds; and
    both mean shares (their own features', alpha's).

    New items then compete for top-list places as known items do: content-only features are
    conditional means, shrunk towards the mean item, and rarely reach a top list unwidened;
    widened too far they flood them. The content rows are items the tower did not fit (out of
    fold, batch.deep.distill), and the shares leave each user's training items out, so no test
    row is read. Ties go to the smallest alpha."""
    centre = known.mean(axis=0)
    targets, reached = [], []
    for held in folds:
        marked = np.zeros(len(known), dtype=bool)
        marked[held] = True
        others = ~marked[rated[1]]  # a new item is in nobody's history
        kept = (rated[0][others], rated[1][others])
        targets.append(top_share(users @ known.T, marked, kept, k))
        shares = []
        for alpha in SPREADS:
            moved = known.copy()
            moved[held] = centre + alpha * (content[held] - centre)
            shares.append(top_share(users @ moved.T, marked, kept, k))
        reached.append(shares)
    target, mean_shares = float(np.mean(targets)), np.mean(reached, axis=0)
    best = int(np.argmin(np.abs(mean_shares - target)))  # the first of equal gaps
    return float(SPREADS[best]), target, float(mean_shares[best])
