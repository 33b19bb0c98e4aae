"""Arrow batches of a score table as PostgreSQL `COPY ... (FORMAT csv)` input, in C++.

pyarrow's CSV writer produces what PostgreSQL's CSV reader expects (NULL as an unquoted empty
field, an empty string as `""`, floats in shortest round-trip form, `nan`/`inf`); list<string>
columns are first rewritten as array literals (`{"a","b"}`), element by element.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from feature_store.score_tables.columns import KEY_SCHEMA, arrow_type
from feature_store.score_tables.sql_filter import quote_identifier

_WRITE_OPTIONS = pa_csv.WriteOptions(include_header=False)

_SQL_TYPES = {
    "int8": "smallint",
    "int16": "smallint",
    "uint8": "smallint",
    "int32": "integer",
    "uint16": "integer",
    "int64": "bigint",
    "uint32": "bigint",
    "uint64": "numeric",
    "halffloat": "real",
    "float": "real",
    "double": "double precision",
    "bool": "boolean",
    "string": "text",
    "large_string": "text",
}


def sql_type(type_string: str) -> str:
    """The PostgreSQL type of a column of this Arrow type (`text[]` for a list of strings)."""
    data_type = arrow_type(type_string)
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        return "text[]"
    return _SQL_TYPES[str(data_type)]


def column_definitions(columns: dict[str, str]) -> str:
    """`"user_id" text COLLATE "C" NOT NULL, ...` for CREATE TABLE: keys, then attributes.

    The ids compare bytewise (`COLLATE "C"`), as the parts are sorted and as the score
    contract breaks ties (item_id ascending): the index build then sorts rows already in order
    with memcmp instead of the database's locale, and `ORDER BY score DESC, item_id` means the
    contract's order whatever the database's collation.
    """
    keys = {"string": 'text COLLATE "C"', "int32": "integer", "double": "double precision"}
    parts = [f"{quote_identifier(f.name)} {keys[str(f.type)]} NOT NULL" for f in KEY_SCHEMA]
    parts += [f"{quote_identifier(name)} {sql_type(t)}" for name, t in columns.items()]
    return ", ".join(parts)


def _array_literals(column: pa.Array) -> pa.Array:
    """A list<string> column as PostgreSQL array literals; NULL elements stay NULL."""
    values = column.flatten()
    escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    quoted = pc.fill_null(pc.binary_join_element_wise('"', escaped, '"', ""), "NULL")
    offsets = pc.subtract(column.offsets, column.offsets[0])
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, quoted), ",")
    return pc.binary_join_element_wise("{", joined, "}", "")


def csv_bytes(batch: pa.RecordBatch) -> pa.Buffer:
    """The rows of `batch` as CSV for `COPY ... FROM STDIN (FORMAT csv)`."""
    columns = [
        _array_literals(column)
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
        else column
        for column in batch.columns
    ]
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(pa.RecordBatch.from_arrays(columns, batch.schema.names), sink, _WRITE_OPTIONS)
    return sink.getvalue()


def rendered_ahead(chunks: Iterator[pa.Buffer], depth: int = 4) -> Iterator[pa.Buffer]:
    """`chunks`, produced by a helper thread up to `depth` ahead of the consumer.

    Decoding Parquet and writing CSV (C++, without the GIL) then overlaps with sending the
    previous chunk and with the server parsing it.
    """
    done = object()
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    failure: list[BaseException] = []
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not offer(chunk):
                    return
        except BaseException as error:  # handed to the consumer, re-raised there
            failure.append(error)
        offer(done)

    producer = threading.Thread(target=produce, name="copy-csv", daemon=True)
    producer.start()
    try:
        while (item := ready.get()) is not done:
            yield cast(pa.Buffer, item)
        if failure:
            raise failure[0]
    finally:
        stop.set()
        producer.join()
