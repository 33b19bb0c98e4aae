"""The exploration-policy interface: choose K items for a user and say how likely each was."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from velox.catalog import ItemMatrix
from velox.errors import DimensionError, InvalidInputError
from velox.posterior import UserPosterior

__all__ = ["Eligibility", "Policy", "Selection"]


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

    def mask(self, n: int) -> NDArray[np.bool_] | None:
        """A boolean mask of eligible items, or None when every item is eligible."""
        if self.exclude is None:
            return self.allowed
        mask = np.ones(n, dtype=np.bool_) if self.allowed is None else self.allowed.copy()
        mask[self.exclude] = False
        return mask


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
        return self._select(
            items,
            posterior,
            int(k),
            Eligibility(allowed=allowed, exclude=excluded),
            self._rng if rng is None else rng,
        )

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
