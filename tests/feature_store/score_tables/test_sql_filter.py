"""SQL filters equal the online mask: random expressions over random items, both engines."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import duckdb
import numpy as np
import psycopg
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feature_store.item_columns import to_item_columns
from feature_store.score_tables import attribute_types
from feature_store.score_tables.postgres_copy import column_definitions, csv_bytes
from feature_store.score_tables.sql_filter import compile_sql_filter
from velox.errors import FilterError
from velox.filters import compile_filter

NUMBERS = ["1990", "1992", "1995.5", "0.1", "0.5", "1", "2.5", "-1", "1e999", "-1e999"]
STRINGS = ["a", "ab", "b", "", "a'b", "x", "i1", "i3"]
OPERATORS = ["==", "!=", "<", "<=", ">", ">="]


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _leaves() -> st.SearchStrategy[str]:
    number = st.sampled_from(NUMBERS)
    text = st.sampled_from(STRINGS).map(_quote)
    numeric = st.sampled_from(["year", "price", "weight"])
    return st.one_of(
        st.builds(lambda c, o, v: f"{c} {o} {v}", numeric, st.sampled_from(OPERATORS), number),
        st.builds(
            lambda c, o, v: f"{c} {o} {v}",
            st.sampled_from(["title", "item"]),
            st.sampled_from(["==", "!="]),
            text,
        ),
        st.builds(lambda v: f"is_new == {v}", st.sampled_from(["true", "false"])),
        st.just("is_new"),
        st.builds(
            lambda c, n, vs: f"{c} {n}in ({', '.join(vs)})",
            numeric,
            st.sampled_from(["", "not "]),
            st.lists(number, min_size=1, max_size=3),
        ),
        st.builds(
            lambda c, n, vs: f"{c} {n}in ({', '.join(vs)})",
            st.sampled_from(["title", "item"]),
            st.sampled_from(["", "not "]),
            st.lists(text, min_size=1, max_size=3),
        ),
        st.builds(lambda c, v: f"{c} contains {v}", st.sampled_from(["title", "genres"]), text),
    )


EXPRESSIONS = st.recursive(
    _leaves(),
    lambda inner: st.one_of(
        inner.map(lambda e: f"not ({e})"),
        st.builds(lambda a, b, j: f"({a}) {j} ({b})", inner, inner, st.sampled_from(["and", "or"])),
    ),
    max_leaves=6,
)


@st.composite
def catalogs(draw: st.DrawFn) -> pa.Table:
    """A random catalog: nullable ints and strings, floats with NaN and NULL, lists, bools."""
    n = draw(st.integers(1, 12))

    def pick(values: list[Any]) -> list[Any]:
        return draw(st.lists(st.sampled_from(values), min_size=n, max_size=n))

    genres = draw(
        st.lists(
            st.lists(st.sampled_from(["x", "y", "z", None, "a'b"]), max_size=3),
            min_size=n,
            max_size=n,
        )
    )
    return pa.table(
        {
            "item_id": pa.array([f"i{i}" for i in range(n)], pa.string()),
            "year": pa.array(pick([1990, 1992, 1995, None]), pa.int64()),
            "price": pa.array(pick([0.5, 1.0, 2.5, math.nan, math.inf, None]), pa.float64()),
            "weight": pa.array(pick([0.1, 0.5, 1.5, None]), pa.float32()),
            "title": pa.array(pick([*STRINGS, None]), pa.string()),
            "genres": pa.array(genres, pa.list_(pa.string())),
            "is_new": pa.array(pick([True, False]), pa.bool_()),
        }
    )


def online_matches(items: pa.Table, expr: str) -> list[str]:
    """Ids the online path keeps for `expr`."""
    ids = np.asarray(items.column("item_id").to_pylist(), dtype=object)
    attributes = items.drop_columns(["item_id"])
    columns = to_item_columns(ids, attributes.combine_chunks().to_batches()[0])
    mask = compile_filter(expr, columns.kinds).mask(columns)
    return sorted(str(i) for i in ids[mask])


@pytest.fixture(scope="module")
def postgres(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    """One connection to the test database."""
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        yield connection


def postgres_matches(connection: psycopg.Connection[Any], items: pa.Table, expr: str) -> list[str]:
    """Ids PostgreSQL keeps, with the table COPYed in exactly as a score table is."""
    columns = attribute_types(items.drop_columns(["item_id"]).schema)
    keys = pa.table(
        {
            "user_id": ["u"] * len(items),
            "rank": pa.array(range(len(items)), pa.int32()),
            "item_id": items.column("item_id"),
            "score": [0.0] * len(items),
        }
    )
    rows = pa.Table.from_arrays(
        [*keys.columns, *items.drop_columns(["item_id"]).columns], [*keys.column_names, *columns]
    )
    condition = compile_sql_filter(expr, columns, "postgres")
    with connection.transaction(force_rollback=True), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE t ({column_definitions(columns)}) ON COMMIT DROP")
        with cursor.copy("COPY t FROM STDIN (FORMAT csv)") as copy:
            copy.write(csv_bytes(rows.combine_chunks().to_batches()[0]))
        cursor.execute(f"SELECT item_id FROM t WHERE {condition.sql}", condition.params)  # noqa: S608
        return sorted(row[0] for row in cursor.fetchall())


def duckdb_matches(items: pa.Table, expr: str) -> list[str]:
    """Ids DuckDB keeps, reading the Arrow table in place as it reads Parquet."""
    columns = attribute_types(items.drop_columns(["item_id"]).schema)
    condition = compile_sql_filter(expr, columns, "duckdb")
    with duckdb.connect() as connection:
        connection.register("t", items)
        found = connection.execute(
            f"SELECT item_id FROM t WHERE {condition.sql}",  # noqa: S608
            list(condition.params),
        ).fetchall()
    return sorted(row[0] for row in found)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=catalogs(), expr=EXPRESSIONS)
def test_sql_equals_the_online_mask(
    postgres: psycopg.Connection[Any], items: pa.Table, expr: str
) -> None:
    """Every expression keeps the same items online, in DuckDB and in PostgreSQL."""
    try:
        expected = online_matches(items, expr)
    except FilterError:
        with pytest.raises(FilterError):
            compile_sql_filter(
                expr, attribute_types(items.drop_columns(["item_id"]).schema), "duckdb"
            )
        return
    assert duckdb_matches(items, expr) == expected
    assert postgres_matches(postgres, items, expr) == expected


@pytest.mark.parametrize(
    "expr",
    [
        "title = 'a'",
        "nope == 1",
        "title < 'a'",
        "genres == 'x'",
        "year contains 'a'",
        "title == 'a\x00'",
    ],
)
def test_refused_expressions_name_the_problem(expr: str) -> None:
    """What the online path refuses, SQL compilation refuses with the same error type."""
    columns = {"title": "string", "genres": "list<item: string>", "year": "int64"}
    with pytest.raises(FilterError):
        compile_sql_filter(expr, columns, "postgres")
