"""Regularized global mean, item and user biases (the baseline predictor), fitted in Spark.

One pass of the classic baseline (Koren 2010): b_i = sum(r - mu) / (n_i + reg), then
b_u = sum(r - mu - b_i) / (n_u + reg); `reg` acts as a pseudo-count of events at the mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf

from batch.prepare import ITEM, REWARD, USER

BIAS_REG = 5.0
RESIDUAL = "residual"


@dataclass(frozen=True)
class Biases:
    """mu plus one bias per dense user and item id (0 for ids without training events).

    `residual_var` is the mean squared training residual of the baseline predictor.
    """

    mean: float
    user: NDArray[np.float64]
    item: NDArray[np.float64]
    residual_var: float


def _dense(
    table: dict[str, NDArray[np.float64]], key: str, value: str, size: int
) -> NDArray[np.float64]:
    dense = np.zeros(size)
    dense[table[key].astype(np.int64)] = table[value]
    return dense


def _collect(frame: DataFrame) -> dict[str, NDArray[np.float64]]:
    table = frame.toArrow()
    return {name: table.column(name).to_numpy() for name in table.column_names}


def fit_biases(
    train: DataFrame, n_users: int, n_items: int, reg: float = BIAS_REG
) -> tuple[Biases, DataFrame]:
    """The baseline predictor of `train` (u, i, r) and `train` with a `residual` column."""
    mean = float(train.agg(sf.avg(REWARD)).first()[0])  # type: ignore[index]
    item_bias = (
        train.groupBy(ITEM)
        .agg((sf.sum(sf.col(REWARD) - mean) / (sf.count("*") + reg)).alias("bi"))
        .cache()
    )
    error = sf.col(REWARD) - mean - sf.col("bi")
    user_stats = (
        train.join(sf.broadcast(item_bias), ITEM)
        .groupBy(USER)
        .agg(
            sf.count("*").alias("n"),
            sf.sum(error).alias("e1"),
            sf.sum(error * error).alias("e2"),
        )
        .withColumn("bu", sf.col("e1") / (sf.col("n") + reg))
        .cache()
    )
    items, users = _collect(item_bias), _collect(user_stats)
    n, e1, e2, bu = users["n"], users["e1"], users["e2"], users["bu"]
    # sum over events of (e - b_u)^2, from each user's sums of e and e^2
    residual_var = float((e2 - 2 * bu * e1 + n * bu * bu).sum() / n.sum())
    residual = (
        train.join(sf.broadcast(item_bias), ITEM)
        .join(sf.broadcast(user_stats.select(USER, "bu")), USER)
        .withColumn(RESIDUAL, sf.col(REWARD) - mean - sf.col("bu") - sf.col("bi"))
    )
    biases = Biases(
        mean=mean,
        user=_dense(users, USER, "bu", n_users),
        item=_dense(items, ITEM, "bi", n_items),
        residual_var=residual_var,
    )
    return biases, residual
