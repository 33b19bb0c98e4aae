"""The decision log's Arrow schema, and the parsing of its Redis stream entries.

The service appends one entry per /predict answer to the partitioned stream
`velox:{M|pP}:decisions` (docs/redis_layout.md, "Decision log entries"): `prediction_id`,
`user_id`, `version`, `policy`, `candidates` (items the policy could choose from; absent in
entries written before it was logged), `source` (where the candidates came from: `exact`, or the
retrieval cascade's `ann-cheap`, `ann-costly`, `ann-widened`, `scan`; absent in older entries),
`timestamp` (epoch microseconds) and `items` /
`propensities` (JSON arrays, slot 0 first), every value a string. The drain (batch/drain.py, family
`DECISIONS`) moves them to Parquet in this schema, partitioned by date like the events.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pyarrow as pa

from batch.errors import EventsSchemaError
from batch.events_schema import StreamEntry

DECISIONS_SCHEMA = pa.schema(
    [
        pa.field("prediction_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("policy", pa.string(), nullable=False),
        pa.field("candidates", pa.int64(), nullable=True),
        pa.field("source", pa.string(), nullable=True),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("items", pa.list_(pa.string()), nullable=False),
        pa.field("propensities", pa.list_(pa.float64()), nullable=False),
    ]
)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def decisions_table_from_stream_entries(entries: Sequence[StreamEntry]) -> pa.Table:
    """Parse decision-log stream entries `(stream_id, {field: value})` into `DECISIONS_SCHEMA`."""
    rows = []
    for stream_id, fields in entries:
        decoded = {_text(key): _text(value) for key, value in fields.items()}
        try:
            items, propensities = json.loads(decoded["items"]), json.loads(decoded["propensities"])
            if len(items) != len(propensities):
                raise ValueError(f"{len(items)} items but {len(propensities)} propensities")
            rows.append(
                {
                    "prediction_id": decoded["prediction_id"],
                    "user_id": decoded["user_id"],
                    "version": int(decoded["version"]),
                    "policy": decoded["policy"],
                    "candidates": int(decoded["candidates"]) if "candidates" in decoded else None,
                    "source": decoded.get("source"),
                    "timestamp": int(decoded["timestamp"]),
                    "items": [str(item) for item in items],
                    "propensities": [float(p) for p in propensities],
                }
            )
        except (KeyError, ValueError, TypeError) as error:
            raise EventsSchemaError(
                f"decision-log entry {_text(stream_id)} is malformed: {error!r}"
            ) from error
    return pa.Table.from_pylist(rows, schema=DECISIONS_SCHEMA)
