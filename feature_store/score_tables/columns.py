"""The columns of a score table: four key columns, then the items' attribute columns.

Attribute types are written in the manifest as Arrow type strings (`str(pa.DataType)`, e.g.
`int64`, `double`, `string`, `list<item: string>`); the filter kinds come from the same
`column_kind` the online catalog uses, so both paths accept exactly the same expressions.
"""

from __future__ import annotations

import pyarrow as pa

from feature_store.errors import InvalidAttributesError
from feature_store.item_columns import column_kind
from feature_store.score_tables.errors import InvalidScoreTableError, ScoreTableCorruptError
from feature_store.score_tables.layout import ITEM_ID, KEY_COLUMNS, RANK, SCORE, USER_ID
from velox.filters import ColumnKind

ITEM = "item"
"""The item id's name in filter expressions (the `item_id` column of the table)."""

KEY_SCHEMA = pa.schema(
    [
        pa.field(USER_ID, pa.string(), nullable=False),
        pa.field(RANK, pa.int32(), nullable=False),
        pa.field(ITEM_ID, pa.string(), nullable=False),
        pa.field(SCORE, pa.float64(), nullable=False),
    ]
)

_LIST_PREFIXES = ("list<", "large_list<")
_STRING_NAMES = ("string", "large_string", "utf8", "large_utf8")


def arrow_type(type_string: str) -> pa.DataType:
    """The Arrow type a manifest's type string names (scalars and lists of strings)."""
    for prefix in _LIST_PREFIXES:
        if type_string.startswith(prefix) and type_string.endswith(">"):
            value = type_string[len(prefix) : -1].rpartition(":")[2].strip()
            if value not in _STRING_NAMES:
                break
            large = prefix == "large_list<"
            return pa.large_list(pa.string()) if large else pa.list_(pa.string())
    try:
        return pa.type_for_alias(type_string)
    except (ValueError, KeyError) as error:
        raise ScoreTableCorruptError(f"unknown column type {type_string!r}") from error


def attribute_types(attributes: pa.Schema) -> dict[str, str]:
    """The manifest's `columns` for these attribute fields; refuses reserved names and types."""
    types = {}
    for field in attributes:
        if field.name in KEY_COLUMNS or field.name == ITEM:
            raise InvalidScoreTableError(
                f"item attribute {field.name!r} collides with a score-table column "
                f"({', '.join((*KEY_COLUMNS, ITEM))})"
            )
        try:
            column_kind(field.name, field.type)
        except InvalidAttributesError as error:
            raise InvalidScoreTableError(error.message) from error
        types[field.name] = str(field.type)
    return types


def table_schema(attributes: pa.Schema) -> pa.Schema:
    """The schema of every part: the key columns, then the attribute columns in their order."""
    attribute_types(attributes)
    return pa.schema([*KEY_SCHEMA, *attributes])


def filter_kinds(columns: dict[str, str]) -> dict[str, ColumnKind]:
    """Filter kinds of a table: `item` plus each attribute column's kind."""
    kinds = {ITEM: ColumnKind.STRING}
    for name, type_string in columns.items():
        try:
            kinds[name] = column_kind(name, arrow_type(type_string))
        except InvalidAttributesError as error:
            raise ScoreTableCorruptError(error.message) from error
    return kinds


def is_floating(type_string: str) -> bool:
    """Whether a column holds floats, where NaN counts as missing (as online)."""
    return bool(pa.types.is_floating(arrow_type(type_string)))
