"""Greedy: the k items with the highest posterior-mean scores, no exploration."""

from __future__ import annotations

import numpy as np

from velox.catalog import ItemMatrix
from velox.policies.base import Eligibility, Policy, Selection
from velox.posterior import UserPosterior
from velox.scoring import score_items, top_k

__all__ = ["Greedy"]


class Greedy(Policy):
    """Exploit only: rank by posterior-mean score; every propensity is 1.

    >>> import numpy as np
    >>> from velox.catalog import ItemMatrix
    >>> from velox.posterior import UserPosterior
    >>> items = ItemMatrix.from_features(np.eye(3, dtype=np.float32))
    >>> Greedy().select(items, UserPosterior.prior([0.2, 0.9, 0.5], lam=1.0), k=2).items
    array([1, 2])
    """

    name = "greedy"

    def _select(
        self,
        items: ItemMatrix,
        posterior: UserPosterior,
        k: int,
        eligible: Eligibility,
        rng: np.random.Generator,
    ) -> Selection:
        """Top-k by mean score."""
        scores = score_items(items, posterior.mean())
        chosen = top_k(scores, k, exclude=eligible.exclude, allowed=eligible.allowed)
        return Selection(items=chosen, scores=scores[chosen], propensities=np.ones(chosen.size))
