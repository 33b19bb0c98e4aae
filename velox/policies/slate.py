"""Slate: exploit every slot but the last by posterior mean, explore the last one uniformly.

Per-slot propensities are exact. Slots 0..k-2 hold the best items by mean score, in order, so
given the earlier slots each is certain (1.0). The last slot is a uniform draw from the
exploration pool, given the earlier slots: every eligible item not already shown, or, with
`pool` = M, the M best of them by mean; its propensity is 1 / (size of that pool). With k = 1
the only slot is the exploring one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from velox.catalog import ItemMatrix
from velox.errors import InvalidInputError
from velox.policies.base import Eligibility, Policy, Selection
from velox.posterior import UserPosterior
from velox.scoring import score_items, top_k

__all__ = ["SlatePolicy"]


class SlatePolicy(Policy):
    """Exploit k-1 slots by mean score and fill the last slot uniformly from a pool.

    >>> import numpy as np
    >>> from velox.catalog import ItemMatrix
    >>> from velox.posterior import UserPosterior
    >>> items = ItemMatrix.from_features(np.eye(4, dtype=np.float32))
    >>> posterior = UserPosterior.prior([0.4, 0.3, 0.2, 0.1], lam=1.0)
    >>> chosen = SlatePolicy(pool=2, seed=0).select(items, posterior, k=3)
    >>> chosen.items[:2].tolist(), chosen.propensities.tolist()
    ([0, 1], [1.0, 1.0, 0.5])
    """

    name = "slate"

    def __init__(self, pool: int | None = None, seed: int | None = None) -> None:
        """`pool`: explore among the best `pool` remaining items (None: every eligible one)."""
        if pool is not None and (isinstance(pool, bool) or pool < 1):
            raise InvalidInputError(f"pool must be a positive integer or None, got {pool!r}")
        super().__init__(seed)
        self.pool = pool

    @property
    def params(self) -> dict[str, Any]:
        """{"pool": M} when the exploration pool is bounded, else {}."""
        return {} if self.pool is None else {"pool": self.pool}

    def _select(
        self,
        items: ItemMatrix,
        posterior: UserPosterior,
        k: int,
        eligible: Eligibility,
        rng: np.random.Generator,
    ) -> Selection:
        """Top k-1 by mean, then one uniform draw from the remaining pool."""
        scores = score_items(items, posterior.mean())
        mask = eligible.mask(items.n)
        n_eligible = items.n if mask is None else int(np.count_nonzero(mask))
        n_slots = min(k, n_eligible)
        if n_slots == 0:
            return Selection(
                items=np.empty(0, np.intp), scores=np.empty(0), propensities=np.ones(0)
            )
        reach = n_slots - 1 + (self.pool if self.pool is not None else 0)
        ranked = top_k(scores, reach, exclude=eligible.exclude, allowed=eligible.allowed)
        exploit = ranked[: n_slots - 1]
        if self.pool is not None:
            candidates = ranked[n_slots - 1 :]
            explored = int(candidates[rng.integers(candidates.size)])
            size = int(candidates.size)
        else:
            size = n_eligible - exploit.size
            explored = self._uniform_outside(exploit, mask, size, rng)
        chosen = np.append(exploit, explored).astype(np.intp)
        propensities = np.ones(n_slots)
        propensities[-1] = 1.0 / size
        return Selection(items=chosen, scores=scores[chosen], propensities=propensities)

    @staticmethod
    def _uniform_outside(
        taken: NDArray[np.intp], mask: NDArray[np.bool_] | None, size: int, rng: np.random.Generator
    ) -> int:
        """A uniform draw from the eligible items not in `taken` (`size` of them), in O(n)."""
        eligible = None if mask is None else np.flatnonzero(mask)
        positions = taken if eligible is None else np.searchsorted(eligible, taken)
        # Draw a rank among the items left, then step over the taken positions below it.
        position = int(rng.integers(size))
        for used in np.sort(positions).tolist():
            if used <= position:
                position += 1
        return position if eligible is None else int(eligible[position])
