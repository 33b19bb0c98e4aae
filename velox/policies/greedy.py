"""Greedy: the k items with the highest posterior-mean scores, no exploration."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from velox.catalog import ItemMatrix
from velox.policies.base import (
    Eligibility,
    Policy,
    Selection,
    SelectionRequest,
    batchable_groups,
)
from velox.posterior import UserPosterior
from velox.scoring import score_items, score_many, top_k, top_k_rows

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

    def _select_many(
        self, items: ItemMatrix, requests: Sequence[SelectionRequest], rng: np.random.Generator
    ) -> list[Selection]:
        """Unrestricted requests of one k share one product and one partition; others alone."""
        found: dict[int, Selection] = {}
        for k, group in batchable_groups(requests).items():
            scores = score_many(items, np.stack([requests[i].posterior.mean() for i in group]))
            chosen = top_k_rows(scores, k)
            mean_scores = np.take_along_axis(scores, chosen, axis=1).astype(np.float64)
            for row, i in enumerate(group):
                found[i] = Selection(chosen[row], mean_scores[row], np.ones(chosen.shape[1]))
        return [
            found.get(i) or self._select(items, r.posterior, r.k, r.eligible, rng)
            for i, r in enumerate(requests)
        ]
