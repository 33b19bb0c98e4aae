"""Symmetric matrices stored as their upper triangle, BLAS packed column-major.

The layout of a posterior's precision A (`velox.posterior`, the state codec) and of a snapshot's
users' Gram matrices (users.arrow `gram`): (0,0), (0,1), (1,1), (0,2), ...
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from velox.errors import DimensionError

__all__ = ["pack_upper", "packed_diagonal", "packed_upper_index", "unpack_upper"]

FloatArray = NDArray[np.float64]


@cache
def packed_diagonal(dim: int) -> NDArray[np.intp]:
    """Where (j, j) sits in a packed triangle of dimension `dim`: j(j+1)/2 + j (read-only)."""
    diagonal = np.arange(1, dim + 1).cumsum() - 1
    diagonal.flags.writeable = False
    return diagonal


@cache
def packed_upper_index(dim: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Row and column of each entry of a BLAS packed upper triangle (column-major)."""
    rows, cols = np.triu_indices(dim)
    order = np.lexsort((rows, cols))
    return rows[order], cols[order]


def pack_upper(matrices: ArrayLike) -> FloatArray:
    """The upper triangles of symmetric (..., d, d) matrices, BLAS packed column-major.

    The order the state codec stores A in (and a snapshot its users' Gram matrices):
    (0,0), (0,1), (1,1), (0,2), ...

    >>> pack_upper([[1.0, 2.0], [2.0, 3.0]]).tolist()
    [1.0, 2.0, 3.0]
    """
    full = np.asarray(matrices, dtype=np.float64)
    rows, cols = packed_upper_index(full.shape[-1])
    return np.ascontiguousarray(full[..., rows, cols])


def unpack_upper(packed: ArrayLike, dim: int) -> FloatArray:
    """The symmetric (..., d, d) matrices whose packed upper triangles are `packed`.

    >>> unpack_upper([1.0, 2.0, 3.0], 2).tolist()
    [[1.0, 2.0], [2.0, 3.0]]
    """
    values = np.asarray(packed, dtype=np.float64)
    if values.shape[-1] != dim * (dim + 1) // 2:
        raise DimensionError(
            f"a packed triangle of dimension {dim} has {dim * (dim + 1) // 2} "
            f"entries, got {values.shape[-1]}"
        )
    rows, cols = packed_upper_index(dim)
    full = np.empty((*values.shape[:-1], dim, dim))
    full[..., rows, cols] = values
    full[..., cols, rows] = values
    return full
