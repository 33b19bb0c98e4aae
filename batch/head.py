"""Per-user ridge heads over fixed item features, solved on the Spark executors.

For every user and every prior precision lambda in a grid:
    w_u = (lambda I + sum x x^T)^-1 (lambda w0 + sum r x)
over the user's training events, which is exactly the posterior mean the online service keeps
(prior mean w0, prior precision lambda), so a user's batch weights equal what replaying their
events online from the population prior would give. The same pass scores each user's held-out
events, so one Spark job yields the weights and the squared errors for every lambda.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf

from batch.prepare import ITEM, REWARD, USER
from batch.splits import TEST

_CHUNK_USERS = 1024
Packed = tuple[bytes, bytes, bytes, bytes, bytes]


@dataclass(frozen=True)
class HeadFit:
    """Weights `(len(lams), n_users, d)` and per-lambda squared-error sums on train and test."""

    lams: tuple[float, ...]
    weights: NDArray[np.float64]
    counts: NDArray[np.int64]
    train_sse: NDArray[np.float64]
    test_sse: NDArray[np.float64]
    n_train: int
    n_test: int

    def rmse(self, which: str = "test") -> NDArray[np.float64]:
        """RMSE per lambda on the held-out (`test`) or the training (`train`) events."""
        sse, n = (self.test_sse, self.n_test) if which == "test" else (self.train_sse, self.n_train)
        return np.asarray(np.sqrt(sse / max(n, 1)), dtype=np.float64)


def _solve_chunk(
    rows: Sequence[Any],
    features: NDArray[np.float64],
    prior: NDArray[np.float64],
    lams: NDArray[np.float64],
) -> Packed:
    dim = features.shape[1]
    users = np.array([row[USER] for row in rows], dtype=np.int64)
    counts = np.array([len(row["train_i"]) for row in rows], dtype=np.int64)
    gram = np.empty((len(rows), dim, dim))
    moment = np.empty((len(rows), dim))
    for k, row in enumerate(rows):
        x = features[np.asarray(row["train_i"], dtype=np.int64)]
        gram[k] = x.T @ x
        moment[k] = x.T @ np.asarray(row["train_r"], dtype=np.float64)
    eye = np.eye(dim)
    weights = np.stack(
        [
            np.linalg.solve(gram + lam * eye, (moment + lam * prior)[..., None])[..., 0]
            for lam in lams
        ],
        axis=1,
    )  # (users, lams, d)
    sse = np.zeros((2, len(lams)))
    for k, row in enumerate(rows):
        for side, (items, rewards) in enumerate(
            ((row["train_i"], row["train_r"]), (row["test_i"], row["test_r"]))
        ):
            if len(items):
                scores = features[np.asarray(items, dtype=np.int64)] @ weights[k].T
                errors = scores - np.asarray(rewards, dtype=np.float64)[:, None]
                sse[side] += np.einsum("ij,ij->j", errors, errors)
    held_out = np.array([sum(len(row["test_i"]) for row in rows)], dtype=np.int64)
    return users.tobytes(), counts.tobytes(), weights.tobytes(), sse.tobytes(), held_out.tobytes()


def _solve_partition(
    rows: Iterable[Any],
    features: bytes,
    dim: int,
    prior: NDArray[np.float64],
    lams: NDArray[np.float64],
) -> Iterator[Packed]:
    matrix = np.frombuffer(features, dtype=np.float64).reshape(-1, dim)
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == _CHUNK_USERS:
            yield _solve_chunk(chunk, matrix, prior, lams)
            chunk = []
    if chunk:
        yield _solve_chunk(chunk, matrix, prior, lams)


def fit_heads(
    frame: DataFrame,
    features: NDArray[np.float64],
    prior: NDArray[np.float64],
    lams: Sequence[float],
    n_users: int,
) -> HeadFit:
    """Solve every user's ridge head on `frame` (u, i, r, test) for each lambda in `lams`."""

    def pairs(held_out: bool) -> Any:
        keep = sf.col(TEST) if held_out else ~sf.col(TEST)
        return sf.collect_list(
            sf.when(keep, sf.struct(sf.col(ITEM).alias("i"), sf.col(REWARD).alias("r")))
        )

    grouped = frame.groupBy(USER).agg(pairs(False).alias("train"), pairs(True).alias("test"))
    lists = grouped.select(
        USER,
        sf.col("train.i").alias("train_i"),
        sf.col("train.r").alias("train_r"),
        sf.col("test.i").alias("test_i"),
        sf.col("test.r").alias("test_r"),
    )
    context = frame.sparkSession.sparkContext
    shared = context.broadcast(np.ascontiguousarray(features, dtype=np.float64).tobytes())
    dim, grid = features.shape[1], np.asarray(lams, dtype=np.float64)
    prior64 = np.asarray(prior, dtype=np.float64)
    try:
        packed = lists.rdd.mapPartitions(
            lambda rows: _solve_partition(rows, shared.value, dim, prior64, grid)
        ).collect()
    finally:
        shared.unpersist()
    weights = np.broadcast_to(prior64, (len(grid), n_users, dim)).copy()
    counts = np.zeros(n_users, dtype=np.int64)
    sse = np.zeros((2, len(grid)))
    n_test = 0
    for users_b, counts_b, weights_b, sse_b, held_out_b in packed:
        users = np.frombuffer(users_b, dtype=np.int64)
        counts[users] = np.frombuffer(counts_b, dtype=np.int64)
        chunk = np.frombuffer(weights_b, dtype=np.float64).reshape(len(users), len(grid), dim)
        weights[:, users] = chunk.transpose(1, 0, 2)
        sse += np.frombuffer(sse_b, dtype=np.float64).reshape(2, len(grid))
        n_test += int(np.frombuffer(held_out_b, dtype=np.int64)[0])
    return HeadFit(
        lams=tuple(float(lam) for lam in grid),
        weights=weights,
        counts=counts,
        train_sse=sse[0],
        test_sse=sse[1],
        n_train=int(counts.sum()),
        n_test=n_test,
    )
