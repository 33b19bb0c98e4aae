"""Item attribute columns: which Arrow types a snapshot may hold, and their numpy form.

Numbers convert without copying (`velox.filters` reads them in place from the memory map);
strings and lists of strings become object arrays once per snapshot load.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from feature_store.errors import InvalidAttributesError
from velox.filters.columns import Column, ColumnKind, ItemColumns, ListColumn

RESERVED_COLUMNS = ("item_id", "features", "item")
SUPPORTED = "int, float, bool, string or list<string>"
OBJECT_SLICE = 65536


def _is_string(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_string(data_type) or pa.types.is_large_string(data_type))


def column_kind(name: str, data_type: pa.DataType) -> ColumnKind:
    """The filter kind of an attribute column of this Arrow type, or `InvalidAttributesError`."""
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type):
        return ColumnKind.NUMBER
    if pa.types.is_boolean(data_type):
        return ColumnKind.BOOL
    if _is_string(data_type):
        return ColumnKind.STRING
    if (pa.types.is_list(data_type) or pa.types.is_large_list(data_type)) and _is_string(
        data_type.value_type
    ):
        return ColumnKind.STRING_LIST
    raise InvalidAttributesError(
        f"item attribute {name!r} has type {data_type}; supported: {SUPPORTED}"
    )


def check_attribute_column(name: str, column: pa.Array | pa.ChunkedArray) -> ColumnKind:
    """Check one attribute column for publishing: a supported type and no reserved name."""
    if name in RESERVED_COLUMNS:
        raise InvalidAttributesError(
            f"item attribute name {name!r} is reserved ({', '.join(RESERVED_COLUMNS)})"
        )
    kind = column_kind(name, column.type)
    # numpy has no missing bool and a null list is ambiguous with an empty one: refuse both.
    if kind in (ColumnKind.BOOL, ColumnKind.STRING_LIST) and column.null_count:
        raise InvalidAttributesError(
            f"item attribute {name!r} has {column.null_count} nulls; {kind.value} columns "
            "may not (use false or an empty list)"
        )
    return kind


def _numpy_column(kind: ColumnKind, array: pa.Array) -> Column:
    if kind is ColumnKind.STRING_LIST:
        offsets = np.asarray(array.offsets, dtype=np.int64)
        start, stop = int(offsets[0]), int(offsets[-1])
        values = object_array(array.values.slice(start, stop - start))
        return ListColumn(offsets=_read_only(offsets - start), values=_read_only(values))
    if kind is ColumnKind.STRING:
        return _read_only(object_array(array))
    zero_copy = kind is ColumnKind.NUMBER and array.null_count == 0
    # Nullable numbers come back as float64 with NaN for missing, as the filter engine expects.
    return _read_only(array.to_numpy(zero_copy_only=zero_copy))


def object_array(array: pa.Array) -> NDArray[np.object_]:
    """A string column as a numpy object array of str, None for nulls.

    Converted in slices: creating 10^6 Python strings in one call holds the GIL for a tenth
    of a second or more, stalling a service that loads a snapshot in a background thread.
    """
    if len(array) <= OBJECT_SLICE:
        whole: NDArray[np.object_] = array.to_numpy(zero_copy_only=False)
        return whole
    parts = [
        array.slice(start, OBJECT_SLICE).to_numpy(zero_copy_only=False)
        for start in range(0, len(array), OBJECT_SLICE)
    ]
    joined: NDArray[np.object_] = np.concatenate(parts)
    return joined


def _read_only(array: NDArray[Any]) -> NDArray[Any]:
    array.setflags(write=False)
    return array


def to_item_columns(item_ids: NDArray[Any], attributes: pa.RecordBatch) -> ItemColumns:
    """The filterable columns of a catalog: every attribute plus `item` (the ids)."""
    kinds: dict[str, ColumnKind] = {"item": ColumnKind.STRING}
    data: dict[str, Column] = {"item": _read_only(item_ids)}
    for name, array in zip(attributes.schema.names, attributes.columns, strict=True):
        kind = check_attribute_column(name, array)
        kinds[name] = kind
        data[name] = _numpy_column(kind, array)
    return ItemColumns(kinds=kinds, data=data, n=len(item_ids))
