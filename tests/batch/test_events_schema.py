"""The events schema: one definition, the Spark type derived, the stream encoding parsed back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch.errors import EventsSchemaError
from batch.events_schema import (
    EVENT_FIELDS,
    EVENTS_SCHEMA,
    StreamEntry,
    conform_events,
    events_table_from_stream_entries,
    spark_events_schema,
    with_date_partition,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _entry(**fields: str) -> dict[str, str]:
    base = {
        "event_id": "e1",
        "user_id": "u1",
        "item_id": "i1",
        "reward": "4.5",
        "timestamp": "1704067200000001",
        "prediction_id": "",
        "propensity": "",
    }
    return {**base, **fields}


def test_field_names_are_the_documented_ones() -> None:
    assert EVENT_FIELDS == (
        "event_id", "user_id", "item_id", "reward", "timestamp", "prediction_id", "propensity",
    )  # fmt: skip
    assert EVENTS_SCHEMA.field("timestamp").type == pa.timestamp("us", tz="UTC")


def test_spark_schema_is_derived_from_the_arrow_one() -> None:
    spark = spark_events_schema()
    assert spark.fieldNames() == list(EVENT_FIELDS)
    nullable = {f.name: f.nullable for f in spark.fields}
    assert nullable == {f.name: f.nullable for f in EVENTS_SCHEMA}
    assert spark["reward"].dataType.typeName() == "double"
    assert spark["timestamp"].dataType.typeName() == "timestamp"


def test_stream_entries_parse_exactly_with_nulls_and_bytes() -> None:
    second = _entry(event_id="e2", prediction_id="p9", propensity="0.25", reward="-1")
    entries: list[StreamEntry] = [
        ("1-0", _entry()),
        (b"2-0", {key.encode(): value.encode() for key, value in second.items()}),
    ]
    table = events_table_from_stream_entries(entries)
    assert table.schema == EVENTS_SCHEMA
    rows = table.to_pylist()
    assert rows[0]["timestamp"] == EPOCH + timedelta(microseconds=1704067200000001)
    assert rows[0]["prediction_id"] is None and rows[0]["propensity"] is None
    assert rows[1] == {
        "event_id": "e2",
        "user_id": "u1",
        "item_id": "i1",
        "reward": -1.0,
        "timestamp": rows[0]["timestamp"],
        "prediction_id": "p9",
        "propensity": 0.25,
    }


def test_missing_optional_fields_read_as_null() -> None:
    entry = _entry()
    del entry["prediction_id"], entry["propensity"]
    row = events_table_from_stream_entries([("1-0", entry)]).to_pylist()[0]
    assert row["prediction_id"] is None and row["propensity"] is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"user_id": ""}, "required field user_id"),
        ({"reward": "abc"}, "malformed number"),
        ({"timestamp": "2024-01-01"}, "malformed number"),
        ({"reward": "nan"}, "NaN or infinity"),
        ({"propensity": "1.5"}, "outside (0, 1]"),
    ],
)
def test_bad_stream_entries_are_refused(fields: dict[str, str], message: str) -> None:
    with pytest.raises(EventsSchemaError, match=message.replace("(", r"\(").replace("]", r"\]")):
        events_table_from_stream_entries([("7-0", _entry(**fields))])


def test_conform_adds_optional_columns_and_refuses_missing_required() -> None:
    table = pa.table(
        {
            "event_id": ["a"],
            "user_id": ["u"],
            "item_id": ["i"],
            "reward": [1],
            "timestamp": pa.array([0], pa.timestamp("s")),
        }
    )
    conformed = conform_events(table)
    assert conformed.schema == EVENTS_SCHEMA
    assert conformed.column("propensity").null_count == 1
    with pytest.raises(EventsSchemaError, match="required column"):
        conform_events(table.drop_columns(["reward"]))


@given(st.integers(min_value=0, max_value=4_102_444_800_000_000))
def test_date_partition_is_the_utc_day(micros: int) -> None:
    table = events_table_from_stream_entries([("1-0", _entry(timestamp=str(micros)))])
    day = with_date_partition(table).column("date")[0].as_py()
    assert day == (EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m-%d")
