"""Filter expressions: known masks on a planted catalog, errors with positions, hostile input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velox.errors import FilterError, FilterSyntaxError, FilterTypeError, UnknownColumnError
from velox.filters import (
    MAX_DEPTH,
    MAX_LENGTH,
    ColumnKind,
    FilterCache,
    ItemColumns,
    ListColumn,
    compile_filter,
)

KINDS = {
    "item": ColumnKind.STRING,
    "genre": ColumnKind.STRING,
    "title": ColumnKind.STRING,
    "year": ColumnKind.NUMBER,
    "price": ColumnKind.NUMBER,
    "votes": ColumnKind.NUMBER,
    "adult": ColumnKind.BOOL,
    "genres": ColumnKind.STRING_LIST,
}

# Five planted items; None / NaN mark missing values.
COLUMNS = ItemColumns(
    kinds=KINDS,
    data={
        "item": np.array(["a", "b", "c", "d", "e"], dtype=object),
        "genre": np.array(["Comedy", "Drama", None, "Comedy", "Horror"], dtype=object),
        "title": np.array(["Star Wars", "Alien", 'It\'s "Big"', None, "Starship"], dtype=object),
        "year": np.array([1977.0, 1979.0, np.nan, 1995.0, 1997.0]),
        "price": np.array([9.5, 25.0, 3.0, 19.99, 12.0]),
        "votes": np.array([10, 0, 5, 7, 3], dtype=np.int64),
        "adult": np.array([False, False, True, False, True]),
        "genres": ListColumn(
            offsets=np.array([0, 2, 3, 3, 5, 6], dtype=np.int64),
            values=np.array(
                ["Sci-Fi", "Action", "Horror", "Comedy", "Drama", "Sci-Fi"], dtype=object
            ),
        ),
    },
    n=5,
)


def _mask(expr: str) -> list[bool]:
    result: list[bool] = compile_filter(expr, KINDS).mask(COLUMNS).tolist()
    return result


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("genre == 'Comedy' and year >= 1990 and price < 20", [0, 0, 0, 1, 0]),
        ("title contains 'Star'", [1, 0, 0, 0, 1]),
        ("item in ('a','b')", [1, 1, 0, 0, 0]),
        ("item in ('a', 'b',)", [1, 1, 0, 0, 0]),
        ("genres contains 'Drama'", [0, 0, 0, 1, 0]),
        ("genres contains 'Sci-Fi'", [1, 0, 0, 0, 1]),
        ("not genres contains 'Sci-Fi'", [0, 1, 1, 1, 0]),
        ('title == "It\'s \\"Big\\""', [0, 0, 1, 0, 0]),
        ("title contains 's \"B'", [0, 0, 1, 0, 0]),
        ("year < 1980 or price <= 3", [1, 1, 1, 0, 0]),
        ("year > 1978 and (genre == 'Drama' or adult)", [0, 1, 0, 0, 1]),
        ("year != 1977", [0, 1, 0, 1, 1]),
        ("not year == 1977", [0, 1, 0, 1, 1]),
        ("not (year < 1990)", [0, 0, 0, 1, 1]),
        ("genre != 'Comedy'", [0, 1, 0, 0, 1]),
        ("genre not in ('Comedy', 'Horror')", [0, 1, 0, 0, 0]),
        ("not not genre == 'Drama'", [0, 1, 0, 0, 0]),
        ("votes in (0, 7.0)", [0, 1, 0, 1, 0]),
        ("votes not in (10,)", [0, 1, 1, 1, 1]),
        ("votes >= 5 and votes < 1e30", [1, 0, 1, 1, 0]),
        ("price > -1.5e1", [1, 1, 1, 1, 1]),
        ("votes > 9223372036854775808", [0, 0, 0, 0, 0]),
        ("adult", [0, 0, 1, 0, 1]),
        ("adult == false", [1, 1, 0, 1, 0]),
        ("adult != true and not adult", [1, 1, 0, 1, 0]),
        ("genre == 'Comedy' or genre == 'Horror' and price > 100", [1, 0, 0, 1, 0]),
        ("(((year == 1995)))", [0, 0, 0, 1, 0]),
    ],
)
def test_known_masks(expr: str, expected: list[int]) -> None:
    assert _mask(expr) == [bool(v) for v in expected]


@pytest.mark.parametrize(
    ("expr", "error", "position"),
    [
        ("", FilterSyntaxError, 0),
        ("year >", FilterSyntaxError, 6),
        ("year >= 1990 and", FilterSyntaxError, 16),
        ("(year > 1", FilterSyntaxError, 9),
        ("year > 1)", FilterSyntaxError, 8),
        ("genre == 'Comedy", FilterSyntaxError, 9),
        ("genre == 'a\\q'", FilterSyntaxError, 11),
        ("year = 1990", FilterSyntaxError, 5),
        ("year == 19a0", FilterSyntaxError, 8),
        ("1990 <= year", FilterSyntaxError, 0),
        ("genre not 'a'", FilterSyntaxError, 10),
        ("votes in ()", FilterSyntaxError, 10),
        ("votes in 3", FilterSyntaxError, 9),
        ("genre == 'a' genre", FilterSyntaxError, 13),
        ("year AND price", FilterSyntaxError, 5),
        ("rating > 3", UnknownColumnError, 0),
        ("year > 1 and Genre == 'x'", UnknownColumnError, 13),
        ("genre < 'M'", FilterTypeError, 0),
        ("year == '1990'", FilterTypeError, 8),
        ("adult == 1", FilterTypeError, 9),
        ("votes in (1, 'x')", FilterTypeError, 9),
        ("adult in (true)", FilterTypeError, 0),
        ("genres == 'Drama'", FilterTypeError, 0),
        ("genres in ('Drama')", FilterTypeError, 0),
        ("year contains '19'", FilterTypeError, 0),
        ("title contains 3", FilterTypeError, 15),
        ("year and adult", FilterTypeError, 0),
    ],
)
def test_errors_name_the_problem_and_position(
    expr: str, error: type[FilterError], position: int
) -> None:
    with pytest.raises(error) as caught:
        compile_filter(expr, KINDS)
    assert caught.value.position == position
    assert f"at position {position}" in caught.value.message
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os')",
        "__import__('os').system('true')",
        "x.__class__",
        "item.__class__.__mro__",
        "item[0]",
        "genre == 'a'; import os",
        "eval('1')",
        "lambda: 1",
        "genre == f'{1}'",
        "year @ 2",
        "year == 1 ** 2",
        "item == `a`",
        "year > 1 \x00",
    ],
)
def test_hostile_input_is_rejected(expr: str) -> None:
    with pytest.raises(FilterError):
        compile_filter(expr, KINDS)


def test_limits_on_length_and_depth() -> None:
    deep_ok = "(" * MAX_DEPTH + "adult" + ")" * MAX_DEPTH
    assert _mask(deep_ok) == [False, False, True, False, True]
    with pytest.raises(FilterSyntaxError, match="nested deeper"):
        compile_filter("(" * (MAX_DEPTH + 1) + "adult" + ")" * (MAX_DEPTH + 1), KINDS)
    with pytest.raises(FilterSyntaxError, match="nested deeper"):
        compile_filter("not " * (MAX_DEPTH + 1) + "adult", KINDS)
    with pytest.raises(FilterSyntaxError, match="longer than"):
        compile_filter("adult or " * 300 + "adult", KINDS)
    long_ok = " or ".join(["adult"] * ((MAX_LENGTH - 5) // 9 + 1))
    assert len(long_ok) <= MAX_LENGTH
    assert _mask(long_ok) == [False, False, True, False, True]


def _mask_or_filter_error(expr: str) -> None:
    """Any input either compiles to a mask of the right shape or raises a FilterError."""
    try:
        mask = compile_filter(expr, KINDS).mask(COLUMNS)
    except FilterError:
        return
    assert mask.dtype == np.bool_ and mask.shape == (5,)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(max_size=60))
def test_arbitrary_text_gives_a_mask_or_a_filter_error(expr: str) -> None:
    _mask_or_filter_error(expr)


TOKENS = st.sampled_from(
    [
        "year",
        "genre",
        "adult",
        "genres",
        "and",
        "or",
        "not",
        "in",
        "contains",
        "(",
        ")",
        ",",
        "==",
        "<",
        ">=",
        "!=",
        "'Comedy'",
        "1990",
        "true",
        "-2.5",
    ]
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(TOKENS, max_size=14))
def test_token_soup_gives_a_mask_or_a_filter_error(tokens: list[str]) -> None:
    _mask_or_filter_error(" ".join(tokens))


def test_cache_returns_read_only_masks_and_evicts_least_recently_used() -> None:
    cache = FilterCache(COLUMNS, maxsize=2)
    first = cache.mask("adult")
    assert first.tolist() == [False, False, True, False, True]
    assert not first.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        first[0] = True
    assert cache.mask("adult") is first
    cache.mask("year > 1990")
    cache.mask("adult")
    cache.mask("price < 10")
    assert len(cache) == 2
    assert cache.mask("adult") is first
    assert cache.mask("year > 1990") is not None
    with pytest.raises(UnknownColumnError):
        cache.mask("nope == 1")
    assert len(cache) == 2


def test_column_missing_from_the_data_is_reported() -> None:
    columns = ItemColumns(kinds=KINDS, data={"item": COLUMNS.data["item"]}, n=5)
    with pytest.raises(UnknownColumnError, match="'year'"):
        FilterCache(columns).mask("year > 1")
