"""`where` expressions compiled to parameterized SQL with exactly the online semantics.

The expression is parsed and type-checked by `velox.filters` (the same parser and checks as
`/predict`), then each node becomes SQL whose three-valued logic equals the online
(matches, fails) pair: SQL's NULL is the online "missing", NOT/AND/OR are Kleene's, and a row
is kept only when the condition is TRUE, so a missing value never matches, not even under
`not` or `!=`. Values only ever travel as parameters; identifiers only come from the table's
own columns, quoted. Float columns read NaN as NULL (online treats NaN as missing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal as TypingLiteral

from feature_store.score_tables.columns import ITEM, filter_kinds, is_floating
from feature_store.score_tables.layout import ITEM_ID, RANK, SCORE, USER_ID
from velox.errors import FilterTypeError
from velox.filters import ColumnKind, compile_filter
from velox.filters.parser import parse
from velox.filters.syntax import And, Compare, Contains, Flag, Literal, Member, Node, Not, Or

Dialect = TypingLiteral["postgres", "duckdb"]
Param = str | int | float | bool

_SQL_OPERATORS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_PLACEHOLDER = {"postgres": "%s", "duckdb": "?"}
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class SqlFilter:
    """A compiled condition: SQL text with placeholders and the parameters, in order."""

    sql: str
    params: tuple[Param, ...]


def quote_identifier(name: str) -> str:
    """`name` as a quoted SQL identifier (double quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


class _Compiler:
    """Turns one checked syntax tree into SQL for one dialect and one table's columns."""

    def __init__(self, dialect: Dialect, columns: dict[str, str]) -> None:
        """Compile for `dialect` against attribute `columns` (name -> Arrow type string)."""
        self._dialect = dialect
        self._columns = columns
        self._kinds = filter_kinds(columns)
        self._params: list[Param] = []

    def compile(self, node: Node) -> SqlFilter:
        """The SQL of the whole tree, with its parameters."""
        return SqlFilter(self._node(node), tuple(self._params))

    def _param(self, value: Param) -> str:
        if isinstance(value, str) and "\x00" in value:
            # PostgreSQL text cannot hold NUL; refuse on both engines so they answer alike.
            raise FilterTypeError("filter strings may not contain NUL characters")
        if isinstance(value, int) and not isinstance(value, bool):
            value = value if _INT64[0] <= value <= _INT64[1] else float(value)
        self._params.append(value)
        return _PLACEHOLDER[self._dialect]

    def _column(self, name: str) -> str:
        if name == ITEM:
            return quote_identifier(ITEM_ID)
        if name not in self._columns:  # compile_filter has already refused unknown names
            raise FilterTypeError(f"unknown column {name!r}")
        quoted = quote_identifier(name)
        if not is_floating(self._columns[name]):
            return quoted
        if self._dialect == "postgres":
            return f"NULLIF({quoted}, 'NaN')"
        return f"(CASE WHEN isnan({quoted}) THEN NULL ELSE {quoted} END)"

    def _float_type(self, *, single: bool) -> str:
        """The dialect's name of a 32-bit (`single`) or 64-bit float type."""
        if self._dialect == "postgres":
            return "REAL" if single else "DOUBLE PRECISION"
        return "FLOAT" if single else "DOUBLE"

    def _node(self, node: Node) -> str:
        if isinstance(node, Not):
            return f"(NOT {self._node(node.operand)})"
        if isinstance(node, And | Or):
            joiner = " AND " if isinstance(node, And) else " OR "
            return "(" + joiner.join(self._node(operand) for operand in node.operands) + ")"
        kind = self._kinds[node.column]
        column = self._column(node.column)
        if isinstance(node, Compare):
            return self._compare(node, kind, column)
        if isinstance(node, Member):
            return self._member(node, kind, column)
        if isinstance(node, Contains):
            return self._contains(node, kind, column)
        assert isinstance(node, Flag)
        return f"({column})"

    def _compare(self, node: Compare, kind: ColumnKind, column: str) -> str:
        value = self._param(node.value)
        if kind is ColumnKind.NUMBER and self._columns.get(node.column) in ("float", "halffloat"):
            # numpy compares a float32 column with a Python number in float32.
            value = f"CAST({value} AS {self._float_type(single=True)})"
        return f"({column} {_SQL_OPERATORS[node.op]} {value})"

    def _member(self, node: Member, kind: ColumnKind, column: str) -> str:
        values: tuple[Literal, ...] = node.values
        if kind is ColumnKind.NUMBER:
            # np.isin compares in float64, whatever the column's own type.
            column = f"CAST({column} AS {self._float_type(single=False)})"
            values = tuple(float(v) for v in values)
        placeholders = ", ".join(self._param(v) for v in values)
        test = f"({column} IN ({placeholders}))"
        return f"(NOT {test})" if node.negated else test

    def _contains(self, node: Contains, kind: ColumnKind, column: str) -> str:
        value = self._param(node.value)
        if kind is ColumnKind.STRING_LIST:
            # A list column is never NULL; a NULL element must not turn "absent" into unknown.
            if self._dialect == "postgres":
                return f"(array_position({column}, {value}::text) IS NOT NULL)"
            return f"coalesce(list_contains({column}, {value}), false)"
        return f"(strpos({column}, {value}) > 0)"


def compile_sql_filter(expr: str, columns: dict[str, str], dialect: Dialect) -> SqlFilter:
    """Check `expr` like the online path does and compile it to SQL for `dialect`."""
    compile_filter(expr, filter_kinds(columns))  # the same refusals and messages as online
    return _Compiler(dialect, columns).compile(parse(expr))


def top_rows_sql(source: str, condition: SqlFilter | None, dialect: Dialect) -> str:
    """SELECT item_id, score, rank of one user's rows matching `condition`, best first.

    Parameters: the user id, the condition's parameters, the limit. `source` is a quoted
    table name or a table function whose arguments are themselves placeholders.
    """
    mark = _PLACEHOLDER[dialect]
    item, score, rank, user = map(quote_identifier, (ITEM_ID, SCORE, RANK, USER_ID))
    where = f" AND {condition.sql}" if condition else ""
    # Only constants, quoted known identifiers and placeholders reach the text: no values.
    return (
        f"SELECT {item}, {score}, {rank} FROM {source} WHERE {user} = {mark}{where} "  # noqa: S608
        f"ORDER BY {score} DESC, {item} LIMIT {mark}"
    )


def has_user_sql(source: str, dialect: Dialect) -> str:
    """SELECT 1 when `source` holds a row of the user (one parameter: the user id)."""
    mark = _PLACEHOLDER[dialect]
    return f"SELECT 1 FROM {source} WHERE {quote_identifier(USER_ID)} = {mark} LIMIT 1"  # noqa: S608
