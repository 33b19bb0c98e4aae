"""The events schema shared by the feedback log, the Parquet event store and the training job.

One definition (`EVENTS_SCHEMA`, pyarrow); the Spark `StructType` is derived from it. Events are
stored as Parquet partitioned by `date` (UTC day of `timestamp`). The online service writes the
same fields into its Redis stream as strings: `timestamp` as integer epoch microseconds and the
empty string for null; `events_table_from_stream_entries` parses that encoding back. The spec
for both encodings is docs/events_schema.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from batch.errors import EventsSchemaError

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

EVENTS_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("reward", pa.float64(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("prediction_id", pa.string(), nullable=True),
        pa.field("propensity", pa.float64(), nullable=True),
    ]
)
EVENT_FIELDS: tuple[str, ...] = tuple(EVENTS_SCHEMA.names)
REQUIRED_FIELDS: tuple[str, ...] = tuple(f.name for f in EVENTS_SCHEMA if not f.nullable)
PARTITION_COLUMN = "date"

# Known item attribute columns and their types; an items table may carry any subset plus others.
ITEM_ATTRIBUTE_TYPES: dict[str, pa.DataType] = {
    "title": pa.string(),
    "year": pa.int32(),
    "genres": pa.list_(pa.string()),
    "price": pa.float64(),
}

StreamValue = bytes | str
StreamEntry = tuple[StreamValue, Mapping[str, str] | Mapping[bytes, bytes]]


def spark_events_schema() -> StructType:
    """The Spark StructType of `EVENTS_SCHEMA` (derived, never written twice)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(EVENTS_SCHEMA)


def with_date_partition(events: pa.Table) -> pa.Table:
    """`events` plus the `date` partition column (`YYYY-MM-DD`, the UTC day of `timestamp`)."""
    day = pc.strftime(events.column("timestamp"), format="%Y-%m-%d")
    return events.append_column(PARTITION_COLUMN, day)


def conform_events(table: pa.Table) -> pa.Table:
    """`table` cast to `EVENTS_SCHEMA` (columns in order, optional ones added as null)."""
    missing = [name for name in REQUIRED_FIELDS if name not in table.column_names]
    if missing:
        raise EventsSchemaError(f"events lack the required column(s) {', '.join(missing)}")
    columns = []
    for field in EVENTS_SCHEMA:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        if not field.nullable and column.null_count:
            raise EventsSchemaError(f"events column {field.name} has {column.null_count} nulls")
        try:
            columns.append(column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise EventsSchemaError(
                f"events column {field.name} cannot be read as {field.type}: {error}"
            ) from error
    events = pa.Table.from_arrays(columns, schema=EVENTS_SCHEMA)
    _check_values(events)
    return events


def _check_values(events: pa.Table) -> None:
    if events.num_rows and not pc.all(pc.is_finite(events.column("reward"))).as_py():
        raise EventsSchemaError("events column reward holds NaN or infinity")
    propensity = events.column("propensity").drop_null()
    if (
        len(propensity)
        and not pc.all(pc.and_(pc.greater(propensity, 0.0), pc.less_equal(propensity, 1.0))).as_py()
    ):
        raise EventsSchemaError("events column propensity holds values outside (0, 1]")


def _text(value: StreamValue) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def events_table_from_stream_entries(entries: Iterable[StreamEntry]) -> pa.Table:
    """Parse feedback-log stream entries `(stream_id, {field: value})` into `EVENTS_SCHEMA`.

    Values are strings (or bytes): `reward` and `propensity` decimal, `timestamp` integer epoch
    microseconds, the empty string for null.
    """
    values: dict[str, list[str | None]] = {name: [] for name in EVENT_FIELDS}
    for stream_id, fields in entries:
        decoded = {_text(key): _text(value) for key, value in fields.items()}
        for name in EVENT_FIELDS:
            text = decoded.get(name, "")
            if text == "" and name in REQUIRED_FIELDS:
                raise EventsSchemaError(
                    f"stream entry {_text(stream_id)} has no value for required field {name}"
                )
            values[name].append(text or None)
    try:
        micros = pa.array(values["timestamp"], pa.string()).cast(pa.int64())
        columns = {
            "event_id": pa.array(values["event_id"], pa.string()),
            "user_id": pa.array(values["user_id"], pa.string()),
            "item_id": pa.array(values["item_id"], pa.string()),
            "reward": pa.array(values["reward"], pa.string()).cast(pa.float64()),
            "timestamp": micros.cast(pa.timestamp("us", tz="UTC")),
            "prediction_id": pa.array(values["prediction_id"], pa.string()),
            "propensity": pa.array(values["propensity"], pa.string()).cast(pa.float64()),
        }
    except pa.ArrowInvalid as error:
        raise EventsSchemaError(f"stream entries hold a malformed number: {error}") from error
    table = pa.table(columns)
    return conform_events(table)
