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
        ranked = top_k(scores, 2 * k, exclude=eligible.exclude, allowed=eligible.allowed)
        mask = eligible.mask(items.n)
        pool: NDArray[np.intp] | None = None if mask is None else np.flatnonzero(mask)
        n_eligible = items.n if pool is None else int(pool.size)
        shown: list[int] = []
        shown_positions: list[int] = []  # positions in the eligible pool, kept sorted
        propensities: list[float] = []
        cursor = 0
        for slot in range(min(k, n_eligible)):
            while int(ranked[cursor]) in shown:
                cursor += 1
            best = int(ranked[cursor])
            remaining = n_eligible - slot
            if rng.random() < self.epsilon:
                position = int(rng.integers(remaining))
                for taken in shown_positions:
                    if taken <= position:
                        position += 1
                item = position if pool is None else int(pool[position])
            else:
                item = best
                position = item if pool is None else int(np.searchsorted(pool, item))
            shown.append(item)
            shown_positions.insert(int(np.searchsorted(shown_positions, position)), position)
            propensities.append((1.0 - self.epsilon) * (item == best) + self.epsilon / remaining)
        chosen = np.asarray(shown, dtype=np.intp)
        return Selection(items=chosen, scores=scores[chosen], propensities=np.asarray(propensities))
