"""Validate events and give users and items the dense integer ids that Spark's ALS needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pyspark.errors import PySparkException
from pyspark.ml.feature import StringIndexer
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf

from batch.errors import EventsSchemaError

USER = "u"
ITEM = "i"
REWARD = "r"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PreparedEvents:
    """Events with dense ids: `frame` has u, i (int), r (double), timestamp, event_id (cached).

    `user_ids[u]` and `item_ids[i]` map the dense ids back to the original string ids.
    """

    frame: DataFrame
    user_ids: list[str]
    item_ids: list[str]
    n_events: int
    cutoff: str

    @property
    def n_users(self) -> int:
        """Number of distinct users."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of distinct items with at least one event."""
        return len(self.item_ids)


def _check(events: DataFrame) -> tuple[int, datetime]:
    """Count the events and find their latest time, refusing nulls and non-finite rewards."""

    checks = [sf.count(sf.lit(1)).alias("n"), sf.max(sf.unix_micros("timestamp")).alias("cutoff")]
    for name in ("event_id", "user_id", "item_id", "reward", "timestamp"):
        checks.append(sf.sum(sf.col(name).isNull().cast("long")).alias(f"null_{name}"))
    finite = sf.col("reward").isin(float("inf"), float("-inf")) | sf.isnan("reward")
    checks.append(sf.sum(finite.cast("long")).alias("non_finite"))
    try:
        row = events.agg(*checks).first()
    except PySparkException as error:
        raise EventsSchemaError(f"events cannot be read in the events schema: {error}") from error
    assert row is not None  # an aggregate without grouping always returns one row
    nulls = {key[5:]: row[key] for key in row.asDict() if key.startswith("null_") and row[key]}
    if nulls:
        raise EventsSchemaError(f"events have nulls (or unreadable values) in {nulls}")
    if row["non_finite"]:
        raise EventsSchemaError(f"{row['non_finite']} events have a NaN or infinite reward")
    if row["n"] == 0:
        raise EventsSchemaError("there are no events to train on")
    return int(row["n"]), EPOCH + timedelta(microseconds=row["cutoff"])


def prepare_events(events: DataFrame) -> PreparedEvents:
    """Check `events` (events schema), index users and items by frequency, cache the result."""
    # The source (often many small date-partition files) is scanned once; the checks, the
    # indexer and the indexed copy then read it from memory.
    events = events.select("user_id", "item_id", "reward", "timestamp", "event_id").cache()
    n_events, cutoff = _check(events)
    indexer = StringIndexer(
        inputCols=["user_id", "item_id"],
        outputCols=["u_index", "i_index"],
        stringOrderType="frequencyDesc",
    ).fit(events)
    user_ids, item_ids = (list(labels) for labels in indexer.labelsArray)
    frame = (
        indexer.transform(events)
        .select(
            sf.col("u_index").cast("int").alias(USER),
            sf.col("i_index").cast("int").alias(ITEM),
            sf.col("reward").alias(REWARD),
            "timestamp",
            "event_id",
        )
        .cache()
    )
    frame.count()
    events.unpersist()
    return PreparedEvents(
        frame=frame,
        user_ids=user_ids,
        item_ids=item_ids,
        n_events=n_events,
        cutoff=cutoff.isoformat(),
    )
