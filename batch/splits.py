"""Hold-out splits of prepared events: a boolean `test` column marks the held-out rows."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as sf

from batch.prepare import USER

TEST = "test"
_BUCKETS = 1_000_000


def no_holdout(frame: DataFrame) -> DataFrame:
    """Every event is training data."""

    return frame.withColumn(TEST, sf.lit(False))


def random_holdout(frame: DataFrame, fraction: float, seed: int) -> DataFrame:
    """Hold out a random `fraction` of events, decided by a seeded hash of `event_id`.

    A hash (not `rand`) keeps the split identical however the data is partitioned, so the
    same seed gives the same split on a laptop and on a cluster.
    """

    bucket = sf.pmod(sf.xxhash64(sf.col("event_id"), sf.lit(seed)), sf.lit(_BUCKETS))
    return frame.withColumn(TEST, bucket >= sf.lit(round((1.0 - fraction) * _BUCKETS)))


def time_holdout(frame: DataFrame, fraction: float, min_events: int) -> DataFrame:
    """Hold out the last `fraction` of each user's events in time (users with >= `min_events`).

    Ties in time are broken by `event_id`; every evaluated user keeps at least one event for
    training and holds out at least one.
    """

    ordered = Window.partitionBy(USER).orderBy("timestamp", "event_id")
    everyone = Window.partitionBy(USER)
    count = sf.count(sf.lit(1)).over(everyone)
    held = sf.greatest(sf.lit(1), sf.floor(count * sf.lit(fraction)))
    position = sf.row_number().over(ordered)
    is_test = (count >= sf.lit(min_events)) & (position > count - held)
    return frame.withColumn(TEST, is_test)
