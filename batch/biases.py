"""Regularized global mean, item and user biases (the baseline predictor), fitted in Spark.

b_i = sum(r - mu - b_u) / (n_i + reg) and b_u = sum(r - mu - b_i) / (n_u + reg), alternated
for a few sweeps: `reg` acts as a pseudo-count of events at the global mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf

from batch.prepare import ITEM, REWARD, USER

BIAS_REG = 5.0
SWEEPS = 2
RESIDUAL = "residual"


@dataclass(frozen=True)
class Biases:
    """mu plus one bias per dense user and item id (0 for ids without training events)."""

    mean: float
    user: NDArray[np.float64]
    item: NDArray[np.float64]


def _dense(frame: DataFrame, key: str, value: str, size: int) -> NDArray[np.float64]:
    table = frame.select(key, value).toArrow()
    dense = np.zeros(size)
    dense[table.column(key).to_numpy()] = table.column(value).to_numpy()
    return dense


def fit_biases(
    train: DataFrame, n_users: int, n_items: int, reg: float = BIAS_REG
) -> tuple[Biases, DataFrame]:
    """The baseline predictor of `train` (u, i, r) and `train` with a `residual` column."""

    mean = float(train.agg(sf.avg(REWARD)).first()[0])  # type: ignore[index]
    user_bias = train.select(USER).distinct().withColumn("bu", sf.lit(0.0))
    for _ in range(SWEEPS):
        item_bias = (
            train.join(user_bias, USER)
            .groupBy(ITEM)
            .agg((sf.sum(sf.col(REWARD) - mean - sf.col("bu")) / (sf.count("*") + reg)).alias("bi"))
        )
        user_bias = (
            train.join(item_bias, ITEM)
            .groupBy(USER)
            .agg((sf.sum(sf.col(REWARD) - mean - sf.col("bi")) / (sf.count("*") + reg)).alias("bu"))
            .cache()
        )
    item_bias = item_bias.cache()
    residual = (
        train.join(sf.broadcast(user_bias), USER)
        .join(sf.broadcast(item_bias), ITEM)
        .withColumn(RESIDUAL, sf.col(REWARD) - mean - sf.col("bu") - sf.col("bi"))
    )
    biases = Biases(
        mean=mean,
        user=_dense(user_bias, USER, "bu", n_users),
        item=_dense(item_bias, ITEM, "bi", n_items),
    )
    return biases, residual
