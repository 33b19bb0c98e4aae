"""Per-user ridge heads over fixed item features, solved on the Spark executors.

For every user and every choice (prior p, precision lambda):

    w_u = (lambda I + sum x x^T)^-1 (lambda p_u + sum r x)

over the user's training events: the posterior mean the online service keeps (prior mean p_u,
prior precision lambda). A prior is one vector for everyone (the population mean) or one
row per user. The same pass scores each user's held-out events, so one Spark job yields the
squared errors of every choice; weights come back only for the users asked for.

Asked for (`with_grams`), each kept user's Gram matrix sum x x^T comes back too (packed upper
triangle, float32): plus lambda I it is the precision of that posterior, which a snapshot
publishes so that the online head continues it exactly (docs/snapshot_format.md).
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
from velox.packed import pack_upper

_CHUNK_USERS = 1024
Packed = tuple[bytes, bytes, bytes, bytes, bytes, bytes, bytes]
Choice = tuple[int, float]  # (index of the prior, lambda)


@dataclass(frozen=True)
class HeadFit:
    """Weights `(len(choices), len(users), d)` of the users asked for, and per-choice errors.

    `counts` (training events per user) and the squared-error sums cover every user.
    """

    choices: tuple[Choice, ...]
    users: NDArray[np.int64]
    weights: NDArray[np.float64]
    counts: NDArray[np.int64]
    train_sse: NDArray[np.float64]
    test_sse: NDArray[np.float64]
    n_train: int
    n_test: int
    grams: NDArray[np.float32] | None = None
    """Per kept user, sum x x^T over its training events, packed upper (velox.packed.pack_upper);
    None unless asked for."""

    def rmse(self, which: str = "test") -> NDArray[np.float64]:
        """RMSE per choice on the held-out (`test`) or the training (`train`) events."""
        sse, n = (self.test_sse, self.n_test) if which == "test" else (self.train_sse, self.n_train)
        return np.asarray(np.sqrt(sse / max(n, 1)), dtype=np.float64)


@dataclass(frozen=True)
class _Shared:
    """What every task needs, as raw bytes (one broadcast), rebuilt as arrays on the executor."""

    features: bytes
    priors: list[tuple[bytes, tuple[int, ...]]]
    keep: bytes
    dim: int

    def arrays(self) -> tuple[NDArray[np.float64], list[NDArray[np.float64]], NDArray[np.bool_]]:
        matrix = np.frombuffer(self.features, dtype=np.float64).reshape(-1, self.dim)
        priors = [np.frombuffer(raw, dtype=np.float64).reshape(shape) for raw, shape in self.priors]
        return matrix, priors, np.frombuffer(self.keep, dtype=np.bool_)


def _solve_chunk(
    rows: Sequence[Any],
    features: NDArray[np.float64],
    priors: list[NDArray[np.float64]],
    keep: NDArray[np.bool_],
    choices: Sequence[Choice],
    with_grams: bool,
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
    solved = []
    for prior_index, lam in choices:
        prior = priors[prior_index]
        mean = prior[users] if prior.ndim == 2 else prior
        solved.append(np.linalg.solve(gram + lam * eye, (moment + lam * mean)[..., None])[..., 0])
    weights = np.stack(solved, axis=1)  # (users, choices, d)
    sse = np.zeros((2, len(choices)))
    for k, row in enumerate(rows):
        for side, (items, rewards) in enumerate(
            ((row["train_i"], row["train_r"]), (row["test_i"], row["test_r"]))
        ):
            if len(items):
                scores = features[np.asarray(items, dtype=np.int64)] @ weights[k].T
                errors = scores - np.asarray(rewards, dtype=np.float64)[:, None]
                sse[side] += np.einsum("ij,ij->j", errors, errors)
    held_out = np.array([sum(len(row["test_i"]) for row in rows)], dtype=np.int64)
    kept = keep[users]
    packed_grams = pack_upper(gram[kept]).astype(np.float32) if with_grams else np.empty(0)
    return (
        users.tobytes(),
        counts.tobytes(),
        users[kept].tobytes(),
        weights[kept].tobytes(),
        sse.tobytes(),
        held_out.tobytes(),
        packed_grams.tobytes(),
    )


def _solve_partition(
    rows: Iterable[Any], shared: _Shared, choices: Sequence[Choice], with_grams: bool
) -> Iterator[Packed]:
    features, priors, keep = shared.arrays()
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == _CHUNK_USERS:
            yield _solve_chunk(chunk, features, priors, keep, choices, with_grams)
            chunk = []
    if chunk:
        yield _solve_chunk(chunk, features, priors, keep, choices, with_grams)


def _user_lists(frame: DataFrame) -> DataFrame:
    def pairs(held_out: bool) -> Any:
        wanted = sf.col(TEST) if held_out else ~sf.col(TEST)
        pair = sf.struct(sf.col(ITEM).alias("i"), sf.col(REWARD).alias("r"))
        return sf.collect_list(sf.when(wanted, pair))

    grouped = frame.groupBy(USER).agg(pairs(False).alias("train"), pairs(True).alias("test"))
    # Item and reward lists taken from one list of pairs stay aligned.
    return grouped.select(
        USER,
        sf.col("train.i").alias("train_i"),
        sf.col("train.r").alias("train_r"),
        sf.col("test.i").alias("test_i"),
        sf.col("test.r").alias("test_r"),
    )


def fit_heads(
    frame: DataFrame,
    features: NDArray[np.float64],
    priors: Sequence[NDArray[np.float64]],
    choices: Sequence[Choice],
    n_users: int,
    keep: NDArray[np.bool_] | None = None,
    with_grams: bool = False,
) -> HeadFit:
    """Solve every user's ridge head on `frame` (u, i, r, test) for each (prior, lambda).

    Each prior is a `(d,)` vector or an `(n_users, d)` matrix. Weights come back for the users
    where `keep` is true (default: all, in user order); every user of `frame` is scored.
    With `with_grams`, also each kept user's Gram matrix (`HeadFit.grams`; zero for a user
    without training events).
    """
    wanted = np.ones(n_users, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    dim = features.shape[1]
    as_bytes = [np.ascontiguousarray(p, dtype=np.float64) for p in priors]
    shared = _Shared(
        features=np.ascontiguousarray(features, dtype=np.float64).tobytes(),
        priors=[(p.tobytes(), p.shape) for p in as_bytes],
        keep=wanted.tobytes(),
        dim=dim,
    )
    plan = tuple((int(p), float(lam)) for p, lam in choices)
    broadcast = frame.sparkSession.sparkContext.broadcast(shared)
    try:
        packed = (
            _user_lists(frame)
            .rdd.mapPartitions(
                lambda rows: _solve_partition(rows, broadcast.value, plan, with_grams)
            )
            .collect()
        )
    finally:
        broadcast.unpersist()
    users = np.flatnonzero(wanted)
    starting = [as_bytes[p] if as_bytes[p].ndim == 1 else as_bytes[p][users] for p, _ in plan]
    # Users that `frame` does not hold at all keep their prior.
    weights = np.stack([np.broadcast_to(w, (len(users), dim)) for w in starting])
    row_of = np.full(n_users, -1, dtype=np.int64)
    row_of[users] = np.arange(len(users))
    counts = np.zeros(n_users, dtype=np.int64)
    sse = np.zeros((2, len(plan)))
    n_test = 0
    grams = np.zeros((len(users), dim * (dim + 1) // 2), dtype=np.float32) if with_grams else None
    for users_b, counts_b, kept_b, weights_b, sse_b, held_out_b, grams_b in packed:
        chunk_users = np.frombuffer(users_b, dtype=np.int64)
        counts[chunk_users] = np.frombuffer(counts_b, dtype=np.int64)
        kept = np.frombuffer(kept_b, dtype=np.int64)
        chunk = np.frombuffer(weights_b, dtype=np.float64).reshape(len(kept), len(plan), dim)
        weights[:, row_of[kept]] = chunk.transpose(1, 0, 2)
        sse += np.frombuffer(sse_b, dtype=np.float64).reshape(2, len(plan))
        n_test += int(np.frombuffer(held_out_b, dtype=np.int64)[0])
        if grams is not None:
            grams[row_of[kept]] = np.frombuffer(grams_b, dtype=np.float32).reshape(len(kept), -1)
    return HeadFit(
        choices=plan,
        users=users,
        weights=weights,
        counts=counts,
        train_sse=sse[0],
        test_sse=sse[1],
        n_train=int(counts.sum()),
        n_test=n_test,
        grams=grams,
    )
