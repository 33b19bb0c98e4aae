"""The exploration-policy interface: choose K items for a user and say how likely each was."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from velox.catalog import ItemMatrix
from velox.errors import DimensionError, InvalidInputError
from velox.posterior import UserPosterior

__all__ = ["Eligibility", "Policy", "Selection", "SelectionRequest", "batchable_groups"]


@dataclass(frozen=True)
class Selection:
    """What a policy chose: items best slot first, their mean scores, per-slot propensities.

    `scores` are posterior-mean scores (the score contract) whatever the policy ranked by;
    `propensities[j]` is the probability that slot j holds `items[j]` given slots 0..j-1.
    """

    items: NDArray[np.intp]
    scores: NDArray[np.float64]
    propensities: NDArray[np.float64]


@dataclass(frozen=True)
class Eligibility:
    """Which items may be chosen: an optional allowed mask and an optional excluded list."""

    allowed: NDArray[np.bool_] | None
    exclude: NDArray[np.intp] | None

    @property
    def unrestricted(self) -> bool:
        """Whether every item is eligible (no mask, nothing excluded)."""
        return self.allowed is None and self.exclude is None

    def mask(self, n: int) -> NDArray[np.bool_] | None:
        """A boolean mask of eligible items, or None when every item is eligible."""
        if self.exclude is None:
            return self.allowed
        mask = np.ones(n, dtype=np.bool_) if self.allowed is None else self.allowed.copy()
        mask[self.exclude] = False
        return mask


@dataclass(frozen=True)
class SelectionRequest:
    """One validated selection: whose posterior, how many items, which are eligible.

    Built by `Policy.request`, which checks the arguments, and passed to `Policy.select_many`.
    """

    posterior: UserPosterior
    k: int
    eligible: Eligibility


def batchable_groups(requests: Sequence[SelectionRequest]) -> dict[int, list[int]]:
    """Positions of the unrestricted requests by k, for groups of two or more (vectorised
    `_select_many` implementations serve these together and the rest one by one)."""
    groups: dict[int, list[int]] = {}
    for position, request in enumerate(requests):
        if request.eligible.unrestricted:
            groups.setdefault(request.k, []).append(position)
    return {k: group for k, group in groups.items() if len(group) > 1}


class Policy(ABC):
    """Base of every exploration policy; `select` validates and calls the `_select` hook.

    Hyper-parameters live under their constructor argument names, learned or random state in
    underscored attributes. The policy owns a generator seeded by `seed`, used when `select`
    is not given one, so a policy built with the same seed makes the same choices.
    """

    name: ClassVar[str]

    def __init__(self, seed: int | None = None) -> None:
        """Create the policy; `seed` seeds its own random generator."""
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    @property
    def params(self) -> dict[str, Any]:
        """Hyper-parameters, for the decision log."""
        return {}

    @property
    def spec(self) -> str:
        """The string `make_policy` parses back into an equivalent policy."""
        values = ",".join(str(v) for v in self.params.values())
        return f"{self.name}:{values}" if values else self.name

    def select(
        self,
        items: ItemMatrix,
        posterior: UserPosterior,
        k: int,
        *,
        allowed: NDArray[np.bool_] | None = None,
        exclude: NDArray[np.intp] | None = None,
        rng: np.random.Generator | None = None,
    ) -> Selection:
        """Choose up to k eligible items (fewer when fewer are eligible), best slot first."""
        request = self.request(items, posterior, k, allowed=allowed, exclude=exclude)
        return self._select(
            items, posterior, request.k, request.eligible, self._rng if rng is None else rng
        )

    def select_many(
        self,
        items: ItemMatrix,
        requests: Sequence[SelectionRequest],
        *,
        rng: np.random.Generator | None = None,
    ) -> list[Selection]:
        """The selections of several requests over one catalog; policies may vectorise.

        One request alone gets exactly `select`'s answer (the same draws). For several, each
        selection follows `select`'s distribution; every policy but Thompson sampling also
        makes `select`'s sequential draws, and Thompson shares its propensity normals across
        the batch (velox/policies/thompson.py says why and what it costs)."""
        if not requests:
            return []
        return self._select_many(items, requests, self._rng if rng is None else rng)

    def request(
        self,
        items: ItemMatrix,
        posterior: UserPosterior,
        k: int,
        *,
        allowed: NDArray[np.bool_] | None = None,
        exclude: NDArray[np.intp] | None = None,
    ) -> SelectionRequest:
        """Check the arguments of one selection (InvalidInputError, DimensionError)."""
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")
        if posterior.dim != items.dim:
            raise DimensionError(f"posterior has d = {posterior.dim}, items have d = {items.dim}")
        if allowed is not None and (allowed.shape != (items.n,) or allowed.dtype != np.bool_):
            raise DimensionError(
                f"allowed must be a bool mask of shape ({items.n},), got {allowed.dtype} "
                f"{allowed.shape}"
            )
        excluded = None
        if exclude is not None and len(exclude) > 0:
            excluded = np.asarray(exclude, dtype=np.intp)
            if excluded.ndim != 1 or excluded.min() < 0 or excluded.max() >= items.n:
                raise InvalidInputError(f"exclude must hold item indices in [0, {items.n})")
        return SelectionRequest(posterior, int(k), Eligibility(allowed=allowed, exclude=excluded))

    def _select_many(
        self, items: ItemMatrix, requests: Sequence[SelectionRequest], rng: np.random.Generator
    ) -> list[Selection]:
        """Hook for `select_many`: by default one `_select` per request, in order."""
        return [self._select(items, r.posterior, r.k, r.eligible, rng) for r in requests]

    @abstractmethod
    def _select(
        self,
        items: ItemMatrix,
        posterior: UserPosterior,
        k: int,
        eligible: Eligibility,
        rng: np.random.Generator,
    ) -> Selection:
        """Choose the items; arguments are already validated."""

    def __repr__(self) -> str:
        """The policy with its hyper-parameters."""
        args = {**self.params, "seed": self.seed}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in args.items())})"
