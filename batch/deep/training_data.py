"""Spark writes the two-tower model's training rows as Parquet: (u, i, r) per row.

Explicit feedback: the training events, rating as r. Implicit feedback: every positive event
(reward > 0) with r = 1, plus `negatives` items drawn uniformly per positive with r = 0
(a drawn item the user did interact with stays a rare, harmless false negative).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as sf

from batch.prepare import ITEM, REWARD, USER
from batch.splits import TEST


def write_training_rows(
    frame: DataFrame, path: str, *, implicit: bool, negatives: int, n_items: int, seed: int
) -> str:
    """Write the training rows of `frame` (u, i, r, test) to Parquet at `path`; returns it."""
    train = frame.filter(~sf.col(TEST)).select(USER, ITEM, REWARD)
    if implicit:
        positives = train.filter(sf.col(REWARD) > 0).select(USER, ITEM, sf.lit(1.0).alias(REWARD))
        drawn = positives.select(
            USER, sf.explode(sf.sequence(sf.lit(1), sf.lit(max(negatives, 1)))).alias("k")
        )
        negative = drawn.select(
            USER,
            sf.floor(sf.rand(seed) * sf.lit(n_items)).cast("int").alias(ITEM),
            sf.lit(0.0).alias(REWARD),
        )
        train = positives.unionByName(negative) if negatives > 0 else positives
    train.write.mode("overwrite").parquet(path)
    return path
