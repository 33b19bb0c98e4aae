"""One served snapshot's retrieval cascade: candidates, then the policy over them alone."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from feature_store.ann_index import AnnIndex
from feature_store.snapshot import Snapshot
from online.retrieval.cascade import Candidates, CascadeConfig, retrieve
from online.retrieval.index_geometry import geometry_of
from velox.policies import Eligibility, Policy, Selection
from velox.posterior import UserPosterior


class ServedCascade:
    """The cascade over a snapshot with an ANN index (online/retrieval/cascade.py)."""

    def __init__(
        self, snapshot: Snapshot, index: AnnIndex, config: CascadeConfig, seed: int | None
    ) -> None:
        """Precompute the gate's geometry; `seed` seeds the exploration queries."""
        self._items = snapshot.items
        self._index = index
        self._geometry = geometry_of(index, snapshot.items)
        self._config = config
        self._rng = np.random.default_rng(seed)

    @classmethod
    def of(
        cls, snapshot: Snapshot, config: CascadeConfig, seed: int | None
    ) -> ServedCascade | None:
        """The cascade of `snapshot`, or None when it has no index (exact scoring)."""
        return None if snapshot.ann is None else cls(snapshot, snapshot.ann, config, seed)

    def select(
        self,
        policy: Policy,
        posterior: UserPosterior,
        k: int,
        allowed: NDArray[np.bool_] | None,
        exclude: NDArray[np.intp] | None,
        *,
        explore: bool,
    ) -> tuple[Selection, Candidates]:
        """The policy's selection among the candidates, in catalog rows, and the candidates.

        Propensities are the policy's, relative to the candidate set.
        """
        eligible = Eligibility(allowed=allowed, exclude=exclude).mask(self._items.n)
        rng = self._rng if explore else None
        found = retrieve(
            self._index, self._geometry, self._items, posterior, k, eligible, self._config, rng
        )
        local = policy.select(found.catalog, posterior, k)
        chosen = Selection(
            items=found.rows[local.items], scores=local.scores, propensities=local.propensities
        )
        return chosen, found
