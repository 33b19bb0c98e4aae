"""COPY binary input equals the CSV input row for row, for every attribute type a score table
may hold and the awkward values (NULL, NaN, infinities, -0.0, quotes, separators, unicode)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pyarrow as pa
import pytest

from feature_store.score_tables.postgres_binary import (
    SIGNATURE,
    TRAILER,
    binary_bytes,
    supports_binary,
)
from feature_store.score_tables.postgres_copy import column_definitions, csv_bytes

INF = float("inf")
NAN = float("nan")
KEYS = {
    "user_id": pa.array(["u1", "u2", 'u\u00e9"x', "u4", "u5", "u6"]),
    "rank": pa.array([1, 2, 3, 4, 5, 6], pa.int32()),
    "item_id": pa.array(["a", "", "c,d", "e\\f", "g\nh", "'; DROP TABLE t; --"]),
    "score": pa.array([1.5, -0.0, INF, NAN, 1e-300, -1.7976931348623157e308]),
}
ATTRIBUTES = {
    "price": pa.array([None, 2.5, -INF, None, 3.0, 0.1]),
    "weight": pa.array([1.1, None, 3.3, 4.4, NAN, -0.0], pa.float32()),
    "half": pa.array([0.5, None, 1.0, -2.0, 0.0, 65504.0], pa.float16()),
    "year": pa.array([1, None, 2**31 - 1, -(2**31), 0, 7], pa.int32()),
    "views": pa.array([2**63 - 1, -(2**63), None, 0, 1, -1], pa.int64()),
    "tiny": pa.array([-128, 127, None, 0, 1, -1], pa.int8()),
    "short": pa.array([-(2**15), 2**15 - 1, None, 0, 1, -1], pa.int16()),
    "u8": pa.array([255, 0, None, 1, 2, 3], pa.uint8()),
    "u16": pa.array([65535, 0, None, 1, 2, 3], pa.uint16()),
    "u32": pa.array([2**32 - 1, 0, None, 1, 2, 3], pa.uint32()),
    "is_new": pa.array([True, False, True, True, False, False]),
    "title": pa.array(["x", None, "", "NULL", "\u00e9\u4e2d", '"\\N'], pa.large_string()),
    "genres": pa.array(
        [["Comedy", "Drama"], [], [], [None, "NULL", 'a"b', ""], ["x,y{}"], ["\\", " "]],
        pa.list_(pa.string()),
    ),
}


@pytest.fixture
def connection(postgres_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection whose work is rolled back at the end."""
    with psycopg.connect(postgres_url) as connection:
        yield connection
        connection.rollback()


def _loaded(
    connection: psycopg.Connection[tuple[object, ...]], batch: pa.RecordBatch, binary: bool
) -> list[tuple[object, ...]]:
    """`batch` COPY'd into a fresh temporary table, read back as text (NaN and -0 kept)."""
    columns = {name: str(batch.schema.field(name).type) for name in ATTRIBUTES}
    table = "b" if binary else "c"
    connection.execute(f"CREATE TEMP TABLE {table} ({column_definitions(columns)})")
    statement = f"COPY {table} FROM STDIN (FORMAT {'binary' if binary else 'csv'})"
    with connection.cursor().copy(statement) as copy:
        if binary:
            copy.write(SIGNATURE + binary_bytes(batch).to_pybytes() + TRAILER)
        else:
            copy.write(csv_bytes(batch))
    text = ", ".join(f'"{name}"::text' for name in [*KEYS, *ATTRIBUTES])
    return connection.execute(f"SELECT {text} FROM {table} ORDER BY rank").fetchall()  # noqa: S608


@pytest.mark.parametrize("offset", [0, 2])
def test_binary_rows_equal_csv_rows(
    connection: psycopg.Connection[tuple[object, ...]], offset: int
) -> None:
    """Every type, both encodings, also for a batch sliced from a larger one."""
    batch = pa.record_batch({**KEYS, **ATTRIBUTES}).slice(offset)
    binary = _loaded(connection, batch, binary=True)
    assert binary == _loaded(connection, batch, binary=False)
    assert len(binary) == 6 - offset
    if offset == 0:  # a few values spelled out, so both cannot be wrong alike
        assert binary[1][3:5] == ("-0", "2.5")
        assert binary[3][-1] == '{NULL,"NULL","a\\"b",""}'
        assert binary[1][-1] == "{}"


def test_only_numeric_columns_fall_back_to_csv() -> None:
    """uint64 attributes become `numeric`, which has no binary encoding here."""
    types = {name: str(array.type) for name, array in ATTRIBUTES.items()}
    assert supports_binary(types)
    assert not supports_binary({**types, "big": "uint64"})
