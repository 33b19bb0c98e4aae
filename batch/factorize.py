"""Spark ALS runs and their factors as dense numpy matrices indexed by the dense ids.

Two factorizations are used (both Spark's ALS): a *rating* ALS on the residuals of the
baseline predictor (explicit), and an *exposure* ALS on which items each user interacted with
(implicit, Hu, Koren & Volinsky 2008), whose item factors carry the co-consumption structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf

from batch.prepare import ITEM, USER


@dataclass(frozen=True)
class AlsSettings:
    """The ALS hyper-parameters shared by both factorizations."""

    rank: int
    reg_param: float
    iterations: int
    seed: int
    alpha: float = 1.0


@dataclass(frozen=True)
class Factors:
    """User and item factors of one ALS run (rows of ids unseen in training are zero).

    `users_seen` marks the users with training events; `train_mse` is NaN unless asked for.
    """

    user: NDArray[np.float64]
    item: NDArray[np.float64]
    users_seen: NDArray[np.bool_]
    train_mse: float


def _dense(frame: DataFrame, size: int, rank: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    table = frame.toArrow()
    dense = np.zeros((size, rank))
    seen = np.zeros(size, dtype=bool)
    ids = table.column("id").to_numpy()
    values = table.column("features").combine_chunks().flatten().to_numpy()
    dense[ids] = values.reshape(len(ids), rank)
    seen[ids] = True
    return dense, seen


def _fit(train: DataFrame, rating: str, settings: AlsSettings, implicit: bool) -> ALSModel:
    blocks = max(2, train.sparkSession.sparkContext.defaultParallelism)
    als = ALS(
        rank=settings.rank,
        regParam=settings.reg_param,
        maxIter=settings.iterations,
        seed=settings.seed,
        implicitPrefs=implicit,
        alpha=settings.alpha,
        userCol=USER,
        itemCol=ITEM,
        ratingCol=rating,
        numUserBlocks=blocks,
        numItemBlocks=blocks,
        coldStartStrategy="drop",
    )
    return als.fit(train)


def fit_factors(
    train: DataFrame,
    rating: str,
    settings: AlsSettings,
    *,
    implicit: bool,
    shape: tuple[int, int],
    score_training: bool = False,
) -> Factors:
    """Run ALS on `train[rating]`; `shape` is (users, items) of the dense id space.

    With `score_training`, `train_mse` is the mean squared error on the training rows: of the
    rating itself for explicit ALS, of the preference (1 for every observed pair) for implicit.
    """
    model = _fit(train, rating, settings, implicit)
    mse = float("nan")
    if score_training:
        target = sf.lit(1.0) if implicit else sf.col(rating)
        scored = model.transform(train).agg(sf.avg((sf.col("prediction") - target) ** 2))
        mse = float(scored.first()[0])  # type: ignore[index]
    user, seen = _dense(model.userFactors, shape[0], settings.rank)
    item, _ = _dense(model.itemFactors, shape[1], settings.rank)
    return Factors(user=user, item=item, users_seen=seen, train_mse=mse)
