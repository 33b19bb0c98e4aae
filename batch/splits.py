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


PART = "part"
"""Three-way splits mark each event TRAIN, VALIDATION or HELD_OUT (the test rows)."""
TRAIN, VALIDATION, HELD_OUT = 0, 1, 2


def global_time_parts(frame: DataFrame, validation: float, test: float) -> DataFrame:
    """Split the whole log at two moments: the latest `test` share of events is the test part,
    the `validation` share before it the validation part (ties in time fall on the later side).

    Leak-free: every model fitted for a part sees only events older than that part, so item
    features never learn from ratings made after the ones they are judged on.
    """
    micros = sf.unix_micros("timestamp")
    cuts = frame.select(micros.alias("t")).approxQuantile(
        "t", [1.0 - test - validation, 1.0 - test], 1e-4
    )
    part = sf.when(micros >= sf.lit(int(cuts[1])), HELD_OUT).when(
        micros >= sf.lit(int(cuts[0])), VALIDATION
    )
    return frame.withColumn(PART, part.otherwise(TRAIN))


def user_time_parts(frame: DataFrame, validation: float, test: float, min_events: int) -> DataFrame:
    """Per user (with >= `min_events` events): the latest `test` share of their events is test,
    the `validation` share before it validation, at least one event each; the rest train."""
    ordered = Window.partitionBy(USER).orderBy("timestamp", "event_id")
    count = sf.count(sf.lit(1)).over(Window.partitionBy(USER))
    position = sf.row_number().over(ordered)
    held = sf.greatest(sf.lit(1), sf.floor(count * sf.lit(test)))
    checked = sf.greatest(sf.lit(1), sf.floor(count * sf.lit(validation)))
    evaluated = count >= sf.lit(min_events)
    part = sf.when(evaluated & (position > count - held), HELD_OUT).when(
        evaluated & (position > count - held - checked), VALIDATION
    )
    return frame.withColumn(PART, part.otherwise(TRAIN))


def random_parts(frame: DataFrame, validation: float, test: float, seed: int) -> DataFrame:
    """A seeded hash of `event_id` puts a random `test` share in test, `validation` share in
    validation (identical however the data is partitioned, as `random_holdout`)."""
    bucket = sf.pmod(sf.xxhash64(sf.col("event_id"), sf.lit(seed)), sf.lit(_BUCKETS))
    test_from = round((1.0 - test) * _BUCKETS)
    validation_from = round((1.0 - test - validation) * _BUCKETS)
    part = sf.when(bucket >= sf.lit(test_from), HELD_OUT).when(
        bucket >= sf.lit(validation_from), VALIDATION
    )
    return frame.withColumn(PART, part.otherwise(TRAIN))


def for_choosing(parts: DataFrame) -> DataFrame:
    """The frame on which choices are made: test rows removed, validation rows held out."""
    return parts.filter(sf.col(PART) < sf.lit(HELD_OUT)).withColumn(
        TEST, sf.col(PART) == sf.lit(VALIDATION)
    )


def for_testing(parts: DataFrame) -> DataFrame:
    """The frame on which fixed choices are judged: train and validation rows train, test held."""
    return parts.withColumn(TEST, sf.col(PART) == sf.lit(HELD_OUT))
