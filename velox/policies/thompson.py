"""Thompson sampling: rank by the scores of one draw of w from the user's posterior.

Propensities are a Monte-Carlo estimate, computed with bounded cost. The candidate set is the
first `n_candidates` (at least k) items of the realised draw's ranking; the scores of those
candidates under `n_draws` fresh posterior draws come from one batched product,
``X_c m + noise_std · (X_c S) Z`` with S Sᵀ = A⁻¹ and Z standard normal (d x n_draws). The
propensity of slot j is the fraction of draws, the realised one included, in which item j
ranks first among the candidates not shown in slots 0..j-1:
``(wins + 1) / (n_draws + 1)``, so it is never 0 (inverse-propensity weights stay finite).
Two approximations, both documented for off-policy evaluation: items outside the candidate
set are taken never to win (they are the ones the realised draw ranked lowest), and the draws
are not conditioned on the earlier slots having come out as they did.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from velox.catalog import ItemMatrix
from velox.errors import InvalidInputError
from velox.policies.base import Eligibility, Policy, Selection
from velox.posterior import UserPosterior
from velox.scoring import score_items, score_rows, top_k

__all__ = ["ThompsonSampling"]


class ThompsonSampling(Policy):
    """Sample w ~ N(mean, noise_std² A⁻¹), show the top-k items by the sampled scores."""

    name = "thompson"

    def __init__(self, seed: int | None = None, n_draws: int = 32, n_candidates: int = 32) -> None:
        """`n_draws` and `n_candidates` bound the cost of the propensity estimate."""
        if n_draws < 1 or n_candidates < 1:
            raise InvalidInputError("n_draws and n_candidates must be >= 1")
        super().__init__(seed)
        self.n_draws = n_draws
        self.n_candidates = n_candidates

    @property
    def params(self) -> dict[str, Any]:
        """Thompson has no hyper-parameter of its own; the estimate's sizes are internal."""
        return {}

    def _select(
        self,
        items: ItemMatrix,
        posterior: UserPosterior,
        k: int,
        eligible: Eligibility,
        rng: np.random.Generator,
    ) -> Selection:
        """Rank by one posterior draw; estimate propensities over a bounded candidate set."""
        sampled = score_items(items, posterior.sample(rng))
        candidates = top_k(
            sampled,
            max(k, self.n_candidates),
            exclude=eligible.exclude,
            allowed=eligible.allowed,
        )
        chosen = candidates[:k]
        return Selection(
            items=chosen,
            scores=score_rows(items, posterior.mean(), chosen),
            propensities=self._propensities(items, posterior, candidates, chosen.size, rng),
        )

    def _propensities(
        self,
        items: ItemMatrix,
        posterior: UserPosterior,
        candidates: NDArray[np.intp],
        n_chosen: int,
        rng: np.random.Generator,
    ) -> NDArray[np.float64]:
        """Monte-Carlo estimate of each slot's conditional choice probability (module doc)."""
        features = items.features[candidates].astype(np.float64)
        z = rng.standard_normal((posterior.dim, self.n_draws))
        draws = (features @ posterior.cov_factor()) @ z
        draws *= posterior.noise_std
        draws += (features @ posterior.mean())[:, None]
        # Candidate rows 0..n_chosen-1 are the shown items in slot order. A shown item wins
        # its slot in a draw when every row ranked above it is an earlier slot, i.e. when the
        # largest row index ranked above it is below its own.
        order = np.argsort(-draws, axis=0, kind="stable")
        above = np.maximum.accumulate(order, axis=0)
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(order.shape[0])[:, None], axis=0)
        slots = np.arange(n_chosen)
        ranks = rank[:n_chosen]
        highest_above = np.where(
            ranks > 0, np.take_along_axis(above, np.maximum(ranks - 1, 0), axis=0), -1
        )
        wins = np.count_nonzero(highest_above < slots[:, None], axis=1)
        propensities: NDArray[np.float64] = (wins + 1.0) / (self.n_draws + 1.0)
        return propensities
