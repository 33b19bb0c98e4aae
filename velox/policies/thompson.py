"""Thompson sampling: rank by the scores of one draw of w from the user's (scaled) posterior.

`scale` multiplies the posterior's standard deviations: draws come from
``N(m, (scale · noise_std)² A⁻¹)``. Scale 1 is plain Thompson sampling; a scale below 1
explores less, for when the posterior is wider than the decision needs (e.g. a wide prior
over a large catalog, where the best of many noisy draws is mostly noise). Scaling the
posterior is standard practice: Chapelle & Li (NeurIPS 2011, "An Empirical Evaluation of
Thompson Sampling") multiply the posterior variance by a tuned factor in their advertising
and news experiments, and linear Thompson sampling (Agrawal & Goyal, ICML 2013) samples from
a scaled posterior by design. Scale 0 ranks by the posterior mean (greedy).

Propensities are a Monte-Carlo estimate, computed with bounded cost. The candidate set is the
first `n_candidates` (at least k) items of the realised draw's ranking; the scores of those
candidates under `n_draws` fresh draws of the same scaled posterior come from one batched
product ``X_c W`` with ``W = m + scale · noise_std · S Z`` (S Sᵀ = A⁻¹, Z standard normal,
d x n_draws), so the estimate is of the policy that actually ran. The propensity of slot j
is the fraction of draws, the realised one included, in which item j ranks first among the
candidates not shown in slots 0..j-1: ``(wins + 1) / (n_draws + 1)``, so it is never 0
(inverse-propensity weights stay finite). Two approximations, both documented for off-policy
evaluation: items outside the candidate set are taken never to win (they are the ones the
realised draw ranked lowest), and the draws are not conditioned on the earlier slots having
come out as they did.

`select_many` (the service's batch of one event-loop iteration) draws the first request's
normals as `select` does and gives every other request its own ranking draw but the first
one's propensity normals Z: each request's Z is still independent of its own ranking draw,
so each estimate is unbiased as before, while the batch draws d (n_draws + 1) + (b - 1) d
normals instead of b d (n_draws + 1). Why: the normals were the largest single cost of a
selection inside a loaded server (bench/bench_select_in_server.py). The price is that the
estimation errors of the requests of one batch (different users, different posteriors)
are correlated, which matters only to the variance of an off-policy estimate over a handful
of decisions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from velox.catalog import ItemMatrix
from velox.errors import InvalidInputError
from velox.kernels import slot_wins
from velox.policies.base import (
    Eligibility,
    Policy,
    Selection,
    SelectionRequest,
    batchable_groups,
)
from velox.posterior import UserPosterior
from velox.scoring import score_items, score_many, score_rows, top_k, top_k_rows

__all__ = ["ThompsonSampling"]


class ThompsonSampling(Policy):
    """Sample w ~ N(mean, (scale · noise_std)² A⁻¹), show the top-k items by the sampled scores."""

    name = "thompson"

    def __init__(
        self,
        scale: float = 1.0,
        seed: int | None = None,
        n_draws: int = 32,
        n_candidates: int = 32,
    ) -> None:
        """`scale` >= 0 multiplies the posterior std; `n_draws` and `n_candidates` bound the
        cost of the propensity estimate."""
        if not (math.isfinite(scale) and scale >= 0.0):
            raise InvalidInputError(f"scale must be a finite number >= 0, got {scale!r}")
        if n_draws < 1 or n_candidates < 1:
            raise InvalidInputError("n_draws and n_candidates must be >= 1")
        super().__init__(seed)
        self.scale = float(scale)
        self.n_draws = n_draws
        self.n_candidates = n_candidates

    @property
    def params(self) -> dict[str, Any]:
        """The posterior scale, and the sizes of the propensity estimate."""
        return {"scale": self.scale, "n_draws": self.n_draws, "n_candidates": self.n_candidates}

    @property
    def spec(self) -> str:
        """ "thompson:<scale>" (the sizes of the propensity estimate are not part of a spec)."""
        return f"{self.name}:{self.scale}"

    def draw_weights(
        self, posterior: UserPosterior, n: int, rng: np.random.Generator
    ) -> NDArray[np.float64]:
        """`n` draws of w from the scaled posterior, one per column (d x n)."""
        return self._weights(posterior, rng.standard_normal((posterior.dim, n)))

    def _weights(
        self, posterior: UserPosterior, normals: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Draws m + scale · noise_std · S z, one per column of the standard normals (d x n)."""
        weights: NDArray[np.float64] = posterior.cov_factor() @ normals
        weights *= self.scale * posterior.noise_std
        weights += posterior.mean()[:, None]
        return weights

    def _select(
        self,
        items: ItemMatrix,
        posterior: UserPosterior,
        k: int,
        eligible: Eligibility,
        rng: np.random.Generator,
    ) -> Selection:
        """Rank by one posterior draw; estimate propensities over a bounded candidate set."""
        # Column 0 is the realised draw that ranks the catalog; the others feed the estimate.
        normals = rng.standard_normal((posterior.dim, self.n_draws + 1))
        return self._select_drawn(items, posterior, k, eligible, normals)

    def _select_drawn(
        self,
        items: ItemMatrix,
        posterior: UserPosterior,
        k: int,
        eligible: Eligibility,
        normals: NDArray[np.float64],
    ) -> Selection:
        """`_select` given its standard normals (d x (n_draws + 1))."""
        weights = self._weights(posterior, normals)
        candidates = top_k(
            score_items(items, weights[:, 0]),
            max(k, self.n_candidates),
            exclude=eligible.exclude,
            allowed=eligible.allowed,
        )
        chosen = candidates[:k]
        draws = np.matmul(items.features[candidates].astype(np.float64), weights[:, 1:])
        return Selection(
            items=chosen,
            scores=score_rows(items, posterior.mean(), chosen),
            propensities=self._propensities(draws[None], chosen.size)[0],
        )

    def _select_many(
        self, items: ItemMatrix, requests: Sequence[SelectionRequest], rng: np.random.Generator
    ) -> list[Selection]:
        """The first request draws exactly as `_select`; the others draw their ranking draw
        only and share its propensity normals (module doc). Unrestricted requests of one k
        are then served together by batched products."""
        first = rng.standard_normal((items.dim, self.n_draws + 1))
        normals = np.empty((len(requests), items.dim, self.n_draws + 1))
        normals[:, :, 1:] = first[:, 1:]
        normals[0, :, 0] = first[:, 0]
        normals[1:, :, 0] = rng.standard_normal((len(requests) - 1, items.dim))
        found: dict[int, Selection] = {}
        for k, group in batchable_groups(requests).items():
            posteriors = [requests[i].posterior for i in group]
            selections = self._select_batch(items, posteriors, k, normals[group])
            found.update(zip(group, selections, strict=True))
        return [
            found.get(i) or self._select_drawn(items, r.posterior, r.k, r.eligible, normals[i])
            for i, r in enumerate(requests)
        ]

    def _select_batch(
        self,
        items: ItemMatrix,
        posteriors: Sequence[UserPosterior],
        k: int,
        normals: NDArray[np.float64],
    ) -> list[Selection]:
        """`_select_drawn` for unrestricted requests of one k, each step one product for all."""
        means = np.stack([p.mean() for p in posteriors])
        spread = np.array([self.scale * p.noise_std for p in posteriors])
        weights = np.stack([p.cov_factor() for p in posteriors]) @ normals
        weights *= spread[:, None, None]
        weights += means[:, :, None]
        candidates = top_k_rows(score_many(items, weights[:, :, 0]), max(k, self.n_candidates))
        chosen = candidates[:, :k]
        features = items.features[candidates]
        draws = np.matmul(features.astype(np.float64), weights[:, :, 1:])
        propensities = self._propensities(draws, chosen.shape[1])
        scores = np.matmul(features[:, : chosen.shape[1]], means.astype(np.float32)[:, :, None])
        scores64 = scores[:, :, 0].astype(np.float64)
        return [
            Selection(items=row, scores=row_scores, propensities=row_propensities)
            for row, row_scores, row_propensities in zip(
                chosen, scores64, propensities, strict=True
            )
        ]

    def _propensities(self, draws: NDArray[np.float64], n_chosen: int) -> NDArray[np.float64]:
        """Monte-Carlo estimate of each slot's conditional choice probability (module doc).

        `draws` holds, per request, one row per candidate (shown items first, in slot order)
        and one column per draw: the candidates' scores under the fresh draws.
        """
        if n_chosen == 0:
            return np.empty((draws.shape[0], 0))
        wins = slot_wins(draws, n_chosen)
        # The realised draw is one more draw, won by every shown item by construction.
        propensities: NDArray[np.float64] = (wins + 1.0) / np.float64(self.n_draws + 1.0)
        return propensities
