"""The item side of a score: the n x d feature matrix and what is precomputed from it once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from velox.errors import DimensionError, NonFiniteError


@dataclass(frozen=True)
class ItemMatrix:
    """Item features f(x; theta) as float32 rows plus row norms, computed once per snapshot."""

    features: NDArray[np.float32]
    norms: NDArray[np.float64]

    @classmethod
    def from_features(cls, features: NDArray[np.float32]) -> ItemMatrix:
        """Wrap an (n, d) float32 matrix (a read-only memory map is fine; it is not copied)."""
        if features.ndim != 2 or features.dtype != np.float32:
            raise DimensionError(
                f"item features must be float32 (n, d), got {features.dtype} {features.shape}"
            )
        norms = np.sqrt(np.einsum("ij,ij->i", features, features, dtype=np.float64))
        if not np.all(np.isfinite(norms)):
            raise NonFiniteError("item features contain NaN or infinity")
        return cls(features=features, norms=norms)

    @property
    def n(self) -> int:
        """Number of items."""
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        """Feature dimension d."""
        return int(self.features.shape[1])
