"""Validate events and give users and items the dense integer ids that Spark's ALS needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pyspark.errors import PySparkException
from pyspark.ml.feature import StringIndexer
from pyspark.sql import Column, DataFrame
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
    skipped: int = 0
    """Events left out for a NaN, infinite or out-of-range reward."""

    @property
    def n_users(self) -> int:
        """Number of distinct users."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of distinct items with at least one event."""
        return len(self.item_ids)


def valid_reward(reward_range: tuple[float, float] | None) -> Column:
    """True for a reward that is finite and, given a range, inside it (both ends inclusive)."""
    reward = sf.col("reward")
    finite = ~(reward.isin(float("inf"), float("-inf")) | sf.isnan(reward))
    if reward_range is None:
        return finite
    low, high = reward_range
    return finite & reward.between(low, high)


def _check(
    events: DataFrame, reward_range: tuple[float, float] | None
) -> tuple[int, int, datetime]:
    """Count the events, the invalid rewards among them and the latest time; refuse nulls."""

    checks = [sf.count(sf.lit(1)).alias("n"), sf.max(sf.unix_micros("timestamp")).alias("cutoff")]
    for name in ("event_id", "user_id", "item_id", "reward", "timestamp"):
        checks.append(sf.sum(sf.col(name).isNull().cast("long")).alias(f"null_{name}"))
    invalid = ~valid_reward(reward_range) & sf.col("reward").isNotNull()
    checks.append(sf.sum(invalid.cast("long")).alias("invalid"))
    try:
        row = events.agg(*checks).first()
    except PySparkException as error:
        raise EventsSchemaError(f"events cannot be read in the events schema: {error}") from error
    assert row is not None  # an aggregate without grouping always returns one row
    nulls = {key[5:]: row[key] for key in row.asDict() if key.startswith("null_") and row[key]}
    if nulls:
        raise EventsSchemaError(f"events have nulls (or unreadable values) in {nulls}")
    if row["n"] == row["invalid"]:
        raise EventsSchemaError("there are no events to train on")
    return int(row["n"]), int(row["invalid"]), EPOCH + timedelta(microseconds=row["cutoff"])


def prepare_events(
    events: DataFrame, reward_range: tuple[float, float] | None = None
) -> PreparedEvents:
    """Check `events` (events schema), index users and items by frequency, cache the result.

    Events whose reward is NaN, infinite or outside `reward_range` are left out and counted
    (`skipped`): one bad event in a drained log must not stop every later retrain.
    """
    # The source (often many small date-partition files) is scanned once; the checks, the
    # indexer and the indexed copy then read it from memory.
    cached = events.select("user_id", "item_id", "reward", "timestamp", "event_id").cache()
    n_all, skipped, cutoff = _check(cached, reward_range)
    events = cached.where(valid_reward(reward_range)) if skipped else cached
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
    cached.unpersist()
    return PreparedEvents(
        frame=frame,
        user_ids=user_ids,
        item_ids=item_ids,
        n_events=n_all - skipped,
        cutoff=cutoff.isoformat(),
        skipped=skipped,
    )
