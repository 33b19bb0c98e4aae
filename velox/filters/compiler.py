"""Type-check a syntax tree against the catalog's column kinds and compile it to a mask.

Evaluation uses three-valued logic: every condition yields (matches, fails), and a missing
value (NaN, None) is in neither, so it never matches, not even under `not` or `!=`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from velox.errors import FilterTypeError, UnknownColumnError
from velox.filters.columns import Column, ColumnKind, ItemColumns, ListColumn
from velox.filters.parser import parse
from velox.filters.syntax import And, Compare, Contains, Flag, Literal, Member, Node, Not, Or

__all__ = ["CompiledFilter", "compile_filter"]

Mask = NDArray[np.bool_]
Truth = tuple[Mask, Mask]
Evaluator = Callable[[ItemColumns], Truth]

_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class CompiledFilter:
    """A checked filter expression, ready to evaluate against a catalog's columns."""

    expression: str
    _evaluate: Evaluator

    def mask(self, columns: ItemColumns) -> Mask:
        """Boolean mask of the items that match (missing values never match)."""
        return self._evaluate(columns)[0]


def _is_number(value: Literal) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind_word(kind: ColumnKind) -> str:
    return "boolean" if kind is ColumnKind.BOOL else kind.value.replace("_", " ")


def _column(columns: ItemColumns, name: str, position: int) -> Column:
    data = columns.data.get(name)
    if data is None:
        raise UnknownColumnError(f"unknown column {name!r}", position)
    return data


def _array(columns: ItemColumns, name: str, position: int) -> NDArray[Any]:
    """A scalar column's array (a list column here means the kinds and data disagree)."""
    data = _column(columns, name, position)
    if isinstance(data, ListColumn):
        raise FilterTypeError(f"column {name!r} holds lists, not single values", position)
    return data


def _present(data: NDArray[Any]) -> Mask:
    """Which rows hold a value: NaN is missing in float columns, None in object columns."""
    if data.dtype.kind == "f":
        return np.asarray(~np.isnan(data), dtype=np.bool_)
    if data.dtype.kind == "O":
        return np.asarray(np.not_equal(data, np.array(None, dtype=object)), dtype=np.bool_)
    return np.ones(data.shape[0], dtype=np.bool_)


def _truth(hits: Mask, present: Mask) -> Truth:
    return hits & present, ~hits & present


def _row_flags(values: Any, test: Callable[[Any], bool]) -> Mask:
    """Apply a Python test to every value (string work on object arrays has no ufunc)."""
    return np.fromiter((test(v) for v in values.tolist()), dtype=np.bool_, count=len(values))


def _check_compare(node: Compare, kind: ColumnKind) -> None:
    """Numbers take every comparison; strings and booleans only == and != with their type."""
    if kind is ColumnKind.STRING_LIST or (
        kind is not ColumnKind.NUMBER and node.op not in ("==", "!=")
    ):
        raise FilterTypeError(
            f"operator {node.op!r} does not apply to {_kind_word(kind)} column {node.column!r}",
            node.position,
        )
    fits = {
        ColumnKind.NUMBER: _is_number(node.value),
        ColumnKind.STRING: isinstance(node.value, str),
        ColumnKind.BOOL: isinstance(node.value, bool),
    }[kind]
    if not fits:
        raise FilterTypeError(
            f"column {node.column!r} holds {_kind_word(kind)}s; {node.value!r} is not one",
            node.value_position,
        )


def _compare(node: Compare, kind: ColumnKind) -> Evaluator:
    _check_compare(node, kind)
    compare = _COMPARISONS[node.op]

    def evaluate(columns: ItemColumns) -> Truth:
        data = _array(columns, node.column, node.position)
        return _truth(np.asarray(compare(data, node.value), dtype=np.bool_), _present(data))

    return evaluate


def _member(node: Member, kind: ColumnKind) -> Evaluator:
    if kind is ColumnKind.NUMBER and all(_is_number(v) for v in node.values):
        values = np.asarray(node.values, dtype=np.float64)

        def hits_of(data: NDArray[Any]) -> Mask:
            return np.isin(data, values)
    elif kind is ColumnKind.STRING and all(isinstance(v, str) for v in node.values):
        wanted = frozenset(node.values)

        def hits_of(data: NDArray[Any]) -> Mask:
            return _row_flags(data, wanted.__contains__)
    else:
        raise FilterTypeError(
            f"'in' needs a list of {_kind_word(kind)}s for column {node.column!r}"
            if kind in (ColumnKind.NUMBER, ColumnKind.STRING)
            else f"'in' does not apply to {_kind_word(kind)} column {node.column!r}",
            node.value_position
            if kind in (ColumnKind.NUMBER, ColumnKind.STRING)
            else node.position,
        )

    def evaluate(columns: ItemColumns) -> Truth:
        data = _column(columns, node.column, node.position)
        assert not isinstance(data, ListColumn)
        hits, present = _truth(hits_of(data), _present(data))
        return (present & ~hits, hits) if node.negated else (hits, present & ~hits)

    return evaluate


def _contains(node: Contains, kind: ColumnKind) -> Evaluator:
    if kind not in (ColumnKind.STRING, ColumnKind.STRING_LIST):
        raise FilterTypeError(
            f"'contains' applies to string and string-list columns, not to "
            f"{_kind_word(kind)} column {node.column!r}",
            node.position,
        )
    if not isinstance(node.value, str):
        raise FilterTypeError(f"'contains' needs a string, got {node.value!r}", node.value_position)
    text = node.value

    def evaluate(columns: ItemColumns) -> Truth:
        data = _column(columns, node.column, node.position)
        if isinstance(data, ListColumn):
            # Count the matching elements of each row's slice with one cumulative sum.
            seen = np.concatenate(([0], np.cumsum(np.equal(data.values, text))))
            hits = seen[data.offsets[1:]] > seen[data.offsets[:-1]]
            return hits, ~hits
        return _truth(_row_flags(data, lambda v: isinstance(v, str) and text in v), _present(data))

    return evaluate


def _flag(node: Flag, kind: ColumnKind) -> Evaluator:
    if kind is not ColumnKind.BOOL:
        raise FilterTypeError(
            f"column {node.column!r} is a {_kind_word(kind)} column, not a condition; "
            f"compare it with a value",
            node.position,
        )

    def evaluate(columns: ItemColumns) -> Truth:
        data = np.asarray(_array(columns, node.column, node.position), dtype=np.bool_)
        return data, ~data

    return evaluate


def _compile(node: Node, kinds: Mapping[str, ColumnKind]) -> Evaluator:
    """Check one node (recursively) and return the function that evaluates it."""
    if isinstance(node, Not):
        inner = _compile(node.operand, kinds)
        return lambda columns: inner(columns)[::-1]
    if isinstance(node, And | Or):
        parts = [_compile(operand, kinds) for operand in node.operands]
        is_and = isinstance(node, And)

        def combine(columns: ItemColumns) -> Truth:
            matches, fails = parts[0](columns)
            for part in parts[1:]:
                more_matches, more_fails = part(columns)
                if is_and:
                    matches, fails = matches & more_matches, fails | more_fails
                else:
                    matches, fails = matches | more_matches, fails & more_fails
            return matches, fails

        return combine
    kind = kinds.get(node.column)
    if kind is None:
        known = ", ".join(sorted(kinds)) or "none"
        raise UnknownColumnError(f"unknown column {node.column!r} (known: {known})", node.position)
    if isinstance(node, Compare):
        return _compare(node, kind)
    if isinstance(node, Member):
        return _member(node, kind)
    if isinstance(node, Contains):
        return _contains(node, kind)
    return _flag(node, kind)


def compile_filter(expr: str, kinds: Mapping[str, ColumnKind]) -> CompiledFilter:
    """Parse and type-check `expr` against column `kinds`; FilterError subclasses on failure."""
    return CompiledFilter(expression=expr, _evaluate=_compile(parse(expr), kinds))
