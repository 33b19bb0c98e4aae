"""ε-greedy: each slot shows the best remaining item, or with probability ε a uniform one."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from velox.catalog import ItemMatrix
from velox.errors import InvalidInputError
from velox.policies.base import Eligibility, Policy, Selection
from velox.posterior import UserPosterior
from velox.scoring import score_items, top_k

__all__ = ["EpsilonGreedy"]


class EpsilonGreedy(Policy):
    """Slot by slot: with probability 1-ε the best remaining item, else a uniform remaining one.

    The propensity of slot j is exact: (1-ε)·[item is the best remaining] + ε/remaining, where
    remaining counts the eligible items not already shown in slots 0..j-1.
    """

    name = "egreedy"

    def __init__(self, epsilon: float = 0.1, seed: int | None = None) -> None:
        """ε in [0, 1]: the probability of a uniform pick in each slot."""
        if not (math.isfinite(epsilon) and 0.0 <= epsilon <= 1.0):
            raise InvalidInputError(f"epsilon must be in [0, 1], got {epsilon!r}")
        super().__init__(seed)
        self.epsilon = float(epsilon)

    @property
    def params(self) -> dict[str, Any]:
        """{"epsilon": ε}."""
        return {"epsilon": self.epsilon}

    def _select(
        self,
        items: ItemMatrix,
        posterior: UserPosterior,
        k: int,
        eligible: Eligibility,
        rng: np.random.Generator,
    ) -> Selection:
        """Walk the greedy order, replacing slots by uniform draws with probability ε."""
        scores = score_items(items, posterior.mean())
        # At most k slots go to uniform draws, so the best remaining item of every slot is
        # among the first 2k of the greedy order.
        ranked = top_k(scores, 2 * k, exclude=eligible.exclude, allowed=eligible.allowed).tolist()
        mask = eligible.mask(items.n)
        n_eligible = items.n if mask is None else int(np.count_nonzero(mask))
        n_slots = min(k, n_eligible)
        explore = (rng.random(n_slots) < self.epsilon).tolist()
        shown: list[int] = []
        propensities = np.empty(n_slots)
        cursor = 0
        for slot in range(n_slots):
            while ranked[cursor] in shown:
                cursor += 1
            best = ranked[cursor]
            remaining = n_eligible - slot
            item = self._uniform(shown, mask, remaining, rng) if explore[slot] else best
            shown.append(item)
            propensities[slot] = (1.0 - self.epsilon) * (item == best) + self.epsilon / remaining
        chosen = np.asarray(shown, dtype=np.intp)
        return Selection(items=chosen, scores=scores[chosen], propensities=propensities)

    @staticmethod
    def _uniform(
        shown: list[int],
        mask: NDArray[np.bool_] | None,
        remaining: int,
        rng: np.random.Generator,
    ) -> int:
        """A uniform draw among the eligible items not yet shown."""
        pool = None if mask is None else np.flatnonzero(mask)
        # The position-th item of the pool once shown items are skipped: walk the shown
        # positions in increasing order, stepping over each one at or before the target.
        position = int(rng.integers(remaining))
        taken = shown if pool is None else np.searchsorted(pool, shown).tolist()
        for index in sorted(taken):
            if index <= position:
                position += 1
        return position if pool is None else int(pool[position])
