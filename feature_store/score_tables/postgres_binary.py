"""Arrow batches of a score table as PostgreSQL `COPY ... (FORMAT binary)` input, in C++.

The server reads binary fields without parsing text (a float8 is 8 bytes, not a decimal
string to convert), and the client writes them without formatting floats: each column
becomes one Arrow binary array of whole encoded fields (length prefix and value), built with
numpy and pyarrow compute, and a row is the element-wise join of the field count and its
columns' fields. Layout (PostgreSQL's COPY binary format):

    file   = SIGNATURE, rows..., TRAILER
    row    = int16 field count, then per field: int32 byte length (-1: NULL), the value
    value  = big-endian integers and IEEE floats, a bool as one byte, text as its UTF-8 bytes,
             text[] as int32 ndim (0 or 1), int32 has-NULL flag, int32 element type (25,
             text), and for ndim 1: int32 length, int32 lower bound (1), then the elements
             as fields

Tables with a column of another type (`numeric`, from uint64) are copied as CSV instead
(`supports_binary`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from feature_store.score_tables.columns import arrow_type

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # the fixed signature, flags 0, no extension
TRAILER = b"\xff\xff"
_NULL = pa.scalar(b"\xff\xff\xff\xff", pa.binary())
_TEXT_OID = 25

_FIXED: dict[str, str] = {  # Arrow type -> the big-endian layout of its PostgreSQL type
    "bool": "u1",
    "int8": ">i2",
    "int16": ">i2",
    "uint8": ">i2",
    "int32": ">i4",
    "uint16": ">i4",
    "int64": ">i8",
    "uint32": ">i8",
    "halffloat": ">f4",
    "float": ">f4",
    "double": ">f8",
}
_TEXT = ("string", "large_string")


def supports_binary(columns: dict[str, str]) -> bool:
    """Whether every attribute column has a binary encoding here (the keys always do)."""
    for type_string in columns.values():
        data_type = arrow_type(type_string)
        is_list = pa.types.is_list(data_type) or pa.types.is_large_list(data_type)
        if not is_list and str(data_type) not in _FIXED and str(data_type) not in _TEXT:
            return False
    return True


def _records(fields: list[tuple[str, np.ndarray]]) -> pa.Array:
    """One fixed-size binary element per row: the given big-endian fields, packed."""
    layout = np.dtype([(f"f{i}", dtype) for i, (dtype, _) in enumerate(fields)])
    packed = np.empty(len(fields[0][1]), dtype=layout)
    for i, (_, values) in enumerate(fields):
        packed[f"f{i}"] = values
    data = pa.py_buffer(packed.view(np.uint8))
    array = pa.Array.from_buffers(pa.binary(layout.itemsize), len(packed), [None, data])
    return array.cast(pa.binary())


def _with_nulls(fields: pa.Array, column: pa.Array) -> pa.Array:
    """`fields`, with the NULL field (length -1, no value) where `column` is null."""
    if column.null_count == 0:
        return fields
    return pc.if_else(pc.is_valid(column), fields, _NULL)


def _fixed(column: pa.Array, layout: str) -> pa.Array:
    """Fields of a fixed-width column: int32 size, then the big-endian value."""
    if pa.types.is_floating(column.type):
        values = pc.fill_null(column, 0).cast(pa.float64()).to_numpy(zero_copy_only=False)
    else:
        values = pc.fill_null(column, False if layout == "u1" else 0).to_numpy(zero_copy_only=False)
    size = np.dtype(layout).itemsize
    length = np.full(len(column), size, dtype=">i4")
    return _with_nulls(_records([(">i4", length), (layout, values.astype(layout))]), column)


def _text(column: pa.Array) -> list[pa.Array]:
    """Fields of a text column, as two arrays to join: the int32 sizes (-1 for NULL), the bytes."""
    values = pc.fill_null(column.cast(pa.binary()), b"")
    sizes = pc.fill_null(pc.binary_length(column), -1).to_numpy(zero_copy_only=False)
    return [_records([(">i4", sizes)]), values]


def _text_array(column: pa.Array) -> pa.Array:
    """Fields of a list<string> column as one-dimensional text[] values."""
    counts = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
    offsets = np.zeros(len(column) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    values = column.flatten()  # only the elements of valid lists, from the array's offset
    prefix, data = _text(values)
    elements = pc.binary_join_element_wise(prefix, data, b"")
    blobs = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), elements), b"")
    nulls = np.concatenate([[0], np.cumsum(values.is_null().to_numpy(zero_copy_only=False))])
    has_null = (nulls[offsets[1:]] - nulls[offsets[:-1]] > 0).astype(">i4")
    size = pc.binary_length(blobs).to_numpy(zero_copy_only=False).astype(np.int64)
    oid = np.full(len(column), _TEXT_OID, dtype=">i4")
    one = np.ones(len(column), dtype=">i4")
    header = [size + 20, one, has_null, oid, counts, one]  # length, ndim, flag, type, dim
    full = _records([(">i4", values) for values in header])
    if (counts == 0).any():  # an empty array: no dimensions at all
        zero = np.zeros(len(column), dtype=">i4")
        empty = _records([(">i4", zero + 12), (">i4", zero), (">i4", zero), (">i4", oid)])
        full = pc.if_else(pa.array(counts > 0), full, empty)
    return _with_nulls(pc.binary_join_element_wise(full, blobs, b""), column)


def binary_bytes(batch: pa.RecordBatch) -> pa.Buffer:
    """The rows of `batch` in COPY binary format (without the SIGNATURE and TRAILER)."""
    field_count = len(batch.columns).to_bytes(2, "big", signed=True)
    parts: list[pa.Array | pa.Scalar] = [pa.scalar(field_count, pa.binary())]
    for column in batch.columns:
        data_type = column.type
        if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
            parts.append(_text_array(column))
        elif str(data_type) in _TEXT:
            parts.extend(_text(column))
        else:
            parts.append(_fixed(column, _FIXED[str(data_type)]))
    rows = pc.binary_join_element_wise(*parts, b"")
    _, offsets, data = rows.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int32)[[rows.offset, rows.offset + len(rows)]]
    return data[int(bounds[0]) : int(bounds[1])]
