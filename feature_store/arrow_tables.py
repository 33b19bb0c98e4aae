"""The two Arrow tables of a snapshot, built from numpy at publish and read back at load.

`items.arrow`: `item_id` string, `features` fixed_size_list<float32, d>, then the attributes.
`users.arrow`: `user_id` string, `w` fixed_size_list<float32, d>, `count` int64, and optionally
`gram` fixed_size_list<float32, d(d+1)/2> (each user's Σ x xᵀ, packed upper triangle).
Each is written as ONE record batch, so that reading it maps every column without copying
(spec: docs/snapshot_format.md). The same checks run at publish and at load.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from feature_store.errors import InvalidAttributesError, InvalidFactorsError
from feature_store.item_columns import check_attribute_column, object_array
from velox.packed import packed_diagonal

_INDEX_SLICE = 16384  # ids per dict.update: a few ms of GIL each


def id_array(ids: Any, what: str) -> pa.Array:
    """Ids as an Arrow string array: non-null, non-empty and unique, else `InvalidFactorsError`."""
    try:
        array = ids if isinstance(ids, pa.Array) else pa.array(ids, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise InvalidFactorsError(f"{what} ids must be strings: {error}") from error
    check_ids(array, what)
    # A Python set is the fastest exact duplicate check here (faster than pc.count_distinct).
    distinct = len(set(ids if isinstance(ids, list) else array.to_pylist()))
    if distinct != len(array):
        raise InvalidFactorsError(f"{what} ids contain {len(array) - distinct} duplicates")
    return array


def check_ids(array: pa.Array, what: str) -> None:
    """Refuse ids that are not strings, or are null or empty (uniqueness is checked apart)."""
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        raise InvalidFactorsError(f"{what} ids must be strings, got {array.type}")
    if array.null_count:
        raise InvalidFactorsError(f"{what} ids contain {array.null_count} nulls")
    if len(array) and pc.min(pc.utf8_length(array)).as_py() == 0:
        raise InvalidFactorsError(f"{what} ids contain an empty string")


def row_index(ids: NDArray[np.object_], what: str) -> dict[str, int]:
    """id -> row of a loaded id column; `InvalidFactorsError` if an id repeats."""
    index: dict[str, int] = {}
    keys = ids.tolist()
    # In slices: one dict(zip(...)) over 10^6 ids holds the GIL for ~0.5 s, which would stall
    # a service that loads its next snapshot in a background thread.
    for start in range(0, len(keys), _INDEX_SLICE):
        stop = start + _INDEX_SLICE
        index.update(zip(keys[start:stop], range(start, stop), strict=False))  # last: shorter
    if len(index) != len(ids):
        raise InvalidFactorsError(f"{what} ids contain {len(ids) - len(index)} duplicates")
    return index


def check_factors(matrix: Any, what: str, rows: int, dim: int | None = None) -> None:
    """Refuse factors that are not a finite float32 (rows, dim) matrix."""
    if not isinstance(matrix, np.ndarray) or matrix.dtype != np.float32 or matrix.ndim != 2:
        shape = getattr(matrix, "shape", None)
        raise InvalidFactorsError(
            f"{what} must be a float32 (n, d) array, got {getattr(matrix, 'dtype', type(matrix))} "
            f"{shape}"
        )
    if matrix.shape[0] != rows:
        raise InvalidFactorsError(f"{what} has {matrix.shape[0]} rows for {rows} ids")
    if dim is not None and matrix.shape[1] != dim:
        raise InvalidFactorsError(f"{what} has dimension {matrix.shape[1]}, expected {dim}")
    # Any NaN or inf makes the sum non-finite, so a finite sum proves every value finite in
    # one fast pass; only a non-finite sum (or a float32 overflow) needs the exact check.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(matrix.sum()):
            return
    finite = np.isfinite(matrix)
    if not finite.all():
        row = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise InvalidFactorsError(f"{what} contain NaN or infinity (first in row {row})")


def _factor_list(matrix: NDArray[np.float32]) -> pa.FixedSizeListArray:
    flat = np.ascontiguousarray(matrix).reshape(-1)  # a view for C-ordered input: no copy
    return pa.FixedSizeListArray.from_arrays(pa.array(flat), int(matrix.shape[1]))


def build_items(ids: Any, features: Any, attributes: pa.Table | None) -> pa.RecordBatch:
    """The `items.arrow` batch; every problem raises a named error before anything is written."""
    id_column = id_array(ids, "item")
    if len(id_column) == 0:
        raise InvalidFactorsError("a snapshot needs at least one item")
    check_factors(features, "item features", len(id_column))
    if features.shape[1] == 0:
        raise InvalidFactorsError("item features have dimension 0")
    names = ["item_id", "features"]
    arrays = [id_column, _factor_list(features)]
    if attributes is not None:
        if not isinstance(attributes, pa.Table):
            raise InvalidAttributesError(
                f"item attributes must be a pyarrow Table, got {attributes!r}"
            )
        if attributes.num_rows != len(id_column):
            raise InvalidAttributesError(
                f"item attributes have {attributes.num_rows} rows for {len(id_column)} items"
            )
        for name, column in zip(attributes.column_names, attributes.columns, strict=True):
            check_attribute_column(name, column)
            names.append(name)
            # One chunk is used as is; combine_chunks would copy it.
            arrays.append(column.chunk(0) if column.num_chunks == 1 else column.combine_chunks())
    if len(set(names)) != len(names):
        raise InvalidAttributesError(f"item attribute names repeat: {names[2:]}")
    return pa.RecordBatch.from_arrays(arrays, names=names)


def build_users(
    ids: Any, weights: Any, counts: Any, dim: int, grams: Any | None = None
) -> pa.RecordBatch:
    """The `users.arrow` batch (it may have no rows: a model need not know any user), with the
    `gram` column when `grams` is given."""
    id_column = id_array(ids, "user")
    check_factors(weights, "user weights", len(id_column), dim)
    counts = np.asarray(counts)
    if counts.shape != (len(id_column),) or not np.issubdtype(counts.dtype, np.integer):
        raise InvalidFactorsError(
            f"user counts must be {len(id_column)} integers, got {counts.dtype} {counts.shape}"
        )
    if len(counts) and counts.min() < 0:
        raise InvalidFactorsError("user counts must not be negative")
    arrays = [id_column, _factor_list(weights), pa.array(counts.astype(np.int64, copy=False))]
    names = ["user_id", "w", "count"]
    if grams is not None:
        check_grams(grams, len(id_column), dim)
        arrays.append(_factor_list(grams))
        names.append(GRAM)
    return pa.RecordBatch.from_arrays(arrays, names=names)


GRAM = "gram"
"""The optional users.arrow column of each user's Gram matrix (packed upper triangle)."""


def check_grams(grams: Any, rows: int, dim: int) -> None:
    """Refuse Gram matrices that are not finite float32 packed triangles with a diagonal >= 0
    (a Gram matrix's diagonal entries are sums of squares)."""
    check_factors(grams, "user Gram matrices", rows, dim * (dim + 1) // 2)
    if rows and grams[:, packed_diagonal(dim)].min() < 0:
        raise InvalidFactorsError("user Gram matrices have a negative diagonal entry")


def read_grams(batch: pa.RecordBatch, dim: int) -> NDArray[np.float32] | None:
    """The users' `gram` column (4th) as a zero-copy (n, d(d+1)/2) float32 view, or None."""
    if batch.num_columns < 4:
        return None
    grams = _float32_column(batch, 3, GRAM, dim * (dim + 1) // 2, "user Gram")
    check_grams(grams, batch.num_rows, dim)
    return grams


def read_ids(batch: pa.RecordBatch, name: str, what: str) -> NDArray[np.object_]:
    """The id column (column 0) of a loaded batch as an object array of str."""
    first = batch.schema.names[0] if batch.num_columns else None
    if first != name:
        raise InvalidFactorsError(f"{what} table starts with {first!r}, not {name!r}")
    ids = batch.column(0)
    check_ids(ids, what)
    return object_array(ids)


def read_factors(batch: pa.RecordBatch, name: str, dim: int, what: str) -> NDArray[np.float32]:
    """The factor column (column 1) of a loaded batch as a zero-copy (n, dim) float32 view."""
    return _float32_column(batch, 1, name, dim, what)


def _float32_column(
    batch: pa.RecordBatch, index: int, name: str, size: int, what: str
) -> NDArray[np.float32]:
    """Column `index`, named `name`, of fixed_size_list<float32, size> as an (n, size) view."""
    if batch.num_columns <= index or batch.schema.names[index] != name:
        raise InvalidFactorsError(f"{what} table has no {name!r} column in place {index + 1}")
    factors = batch.column(index)
    kind = factors.type
    if not (
        pa.types.is_fixed_size_list(kind)
        and kind.list_size == size
        and kind.value_type == pa.float32()
        and factors.null_count == 0
        and factors.values.null_count == 0
    ):
        raise InvalidFactorsError(
            f"{what} factors have type {kind} (nulls: {factors.null_count}), expected "
            f"fixed_size_list<float32, {size}> without nulls"
        )
    matrix: NDArray[np.float32] = (
        factors.flatten().to_numpy(zero_copy_only=True).reshape(len(factors), size)
    )
    return matrix
