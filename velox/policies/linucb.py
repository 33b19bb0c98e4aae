"""LinUCB: rank by mean score + alpha · predictive std, with exact pruning of hopeless items.

A full UCB needs xᵀA⁻¹x for every item, n·d² work. Instead: the predictive std of item i is
at most ``noise_std · ‖x_i‖ / sqrt(precision_floor)``, where the floor is a certified lower
bound on λ_min(A) (at least λ) that tightens as the user's data grows.
The exact UCBs of the k best items by mean give a value τ that the k-th best UCB reaches;
every item whose bound is below τ cannot be in the top k, so exact stds are computed only for
the items whose bound reaches τ. The result is the exact top-k.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from velox.catalog import ItemMatrix
from velox.errors import InvalidInputError
from velox.policies.base import Eligibility, Policy, Selection
from velox.posterior import UserPosterior
from velox.scoring import score_items, top_k

__all__ = ["LinUCB"]

# Rounding in the exact std must never push an item over its own bound.
_BOUND_SLACK = 1.0 + 1e-9


class LinUCB(Policy):
    """Deterministic optimism: top-k by mean + alpha·std; every propensity is 1."""

    name = "linucb"

    def __init__(self, alpha: float = 1.0, seed: int | None = None) -> None:
        """alpha >= 0 weighs the predictive std against the mean."""
        if not (math.isfinite(alpha) and alpha >= 0.0):
            raise InvalidInputError(f"alpha must be a finite number >= 0, got {alpha!r}")
        super().__init__(seed)
        self.alpha = float(alpha)

    @property
    def params(self) -> dict[str, Any]:
        """{"alpha": alpha}."""
        return {"alpha": self.alpha}

    def _select(
        self,
        items: ItemMatrix,
        posterior: UserPosterior,
        k: int,
        eligible: Eligibility,
        rng: np.random.Generator,
    ) -> Selection:
        """Prune with the norm bound, then rank the survivors by exact UCB."""
        means = score_items(items, posterior.mean())
        seeds = top_k(means, k, exclude=eligible.exclude, allowed=eligible.allowed)
        if seeds.size == 0:
            return Selection(items=seeds, scores=means[seeds], propensities=np.ones(0))
        bonus_scale = (
            self.alpha * posterior.noise_std / math.sqrt(posterior.precision_floor) * _BOUND_SLACK
        )
        threshold = float(np.min(means[seeds] + self.alpha * posterior.std(items.features[seeds])))
        reachable = means + bonus_scale * items.norms >= threshold
        mask = eligible.mask(items.n)
        if mask is not None:
            reachable &= mask
        candidates = np.flatnonzero(reachable)
        ucb = means[candidates] + self.alpha * posterior.std(items.features[candidates])
        chosen = candidates[top_k(ucb, k)]
        return Selection(items=chosen, scores=means[chosen], propensities=np.ones(chosen.size))
