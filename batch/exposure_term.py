"""The exposure term: what each user did, added to their rating scores and calibrated.

A rating head (batch.head) predicts held-out ratings well and ranks badly: the items it scores
highest are often ones the user would never pick. The exposure ALS of `batch.train_als` gives
every user u and item i factors with e_ui = p_uᵀ y_i, how strongly u's history points at i
(implicit ALS's own ranking score). The term adds, to u's rating scores r_ui = x_iᵀ w_u,

    b_u (e_ui - ē_u),        b_u = beta · min(1, n0 / n_u)     (n_u: u's training events)

strong for users with few events (whom their ratings say little about, and whose few held-out
rows weigh little in a pooled RMSE), weaker for heavy users. Then each user's sum is calibrated
back to the rating scale where the user is likely to rate next: with weights q_ui ∝ max(e_ui, 0)
over the catalog, m_u and ē_u the q-means of r and e, and a_u the q-regression slope of r on the
sum (clipped to [A_MIN, 1]),

    s_ui = m_u + a_u (r_ui + b_u (e_ui - ē_u) - m_u).

A positive affine map of one user's scores changes no ranking, so the calibration costs no
NDCG; it only shrinks predictions towards the user's likely level (RMSE). The result is one
weight vector per user over the same features, so the score stays one dot product and the
online update (batch w as prior mean, precision lambda) is unchanged:

    w'_u = a_u (w_u + b_u d_u) + ((1 - a_u) m_u - a_u b_u ē_u) c

with d_u the feature-space direction of p_u (x_iᵀ d_u = e_ui, `FeatureModel.exposure_directions`)
and c the unit vector of the constant feature. `beta` and `n0` are chosen on validation rows
with the head (batch.head_choice); docs/batch.md says what the term costs and buys.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

A_MIN = 0.05
"""The smallest calibration slope (a user whose sum is almost all exposure keeps some of it)."""
_CHUNK = 512  # users scored per matrix product

FloatArray = NDArray[np.float64]


def exposure_strength(counts: NDArray[np.int64], beta: float, n0: float) -> FloatArray:
    """b_u = beta · min(1, n0 / n_u) for each user's number of training events n_u."""
    scaled = np.minimum(1.0, n0 / np.maximum(counts, 1).astype(np.float64))
    return np.asarray(beta * scaled, dtype=np.float64)


def add_exposure_term(
    items: FloatArray,
    weights: FloatArray,
    directions: FloatArray,
    counts: NDArray[np.int64],
    term: tuple[float, float],
    constant: int,
) -> FloatArray:
    """The calibrated weights w'_u (module doc) of the rows of `weights`.

    `items` are the item features (n_items, d), whose column `constant` is 1 for every item;
    `directions` and `counts` are the users' d_u and training-event counts, row for row with
    `weights`; `term` is (beta, n0). Users whose exposure scores are nowhere positive (no
    exposure factors) keep their weights.
    """
    beta, n0 = term
    out = np.array(weights, dtype=np.float64, copy=True)
    if beta == 0.0:
        return out
    strength = exposure_strength(counts, beta, n0)
    for first in range(0, out.shape[0], _CHUNK):
        rows = slice(first, first + _CHUNK)
        rating = out[rows] @ items.T
        exposure = directions[rows] @ items.T
        q = np.maximum(exposure, 0.0)
        total = q.sum(axis=1)
        has = total > 0
        q[has] /= total[has, None]
        m = (q * rating).sum(axis=1)
        e_bar = (q * exposure).sum(axis=1)
        b = strength[rows]
        centred = rating - m[:, None]
        summed = centred + b[:, None] * (exposure - e_bar[:, None])
        covariance = (q * summed * centred).sum(axis=1)
        variance = (q * summed * summed).sum(axis=1)
        slope = np.ones_like(variance)
        positive = variance > 0
        slope[positive] = covariance[positive] / variance[positive]
        a = np.clip(slope, A_MIN, 1.0)
        moved = a[:, None] * (out[rows] + b[:, None] * directions[rows])
        moved[:, constant] += (1.0 - a) * m - a * b * e_bar
        out[rows] = np.where(has[:, None], moved, out[rows])
    return out
