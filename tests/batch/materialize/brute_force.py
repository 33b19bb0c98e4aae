"""The score contract recomputed from a snapshot's files with plain numpy and Python sorting."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import ipc

from feature_store.registry import Registry
from feature_store.snapshot_data import SnapshotData
from tests.feature_store.planted import planted_data

MODEL = "planted"


def tied_data(seed: int = 3, n: int = 30, m: int = 9, d: int = 3) -> SnapshotData:
    """Small integer features and weights: every score is exact, and many tie."""
    rng = np.random.default_rng(seed)
    data = planted_data(seed, n=n, m=m, d=d)
    features = rng.integers(-2, 3, size=(n, d)).astype(np.float32)
    features[5] = features[11]  # identical items always tie
    return replace(
        data,
        item_ids=[f"item-{(i * 7) % n:03d}" for i in range(n)],  # stored out of id order
        item_features=features,
        user_weights=rng.integers(-1, 2, size=(m, d)).astype(np.float32),
    )


def publish(root: Path, data: SnapshotData) -> int:
    """Publish and promote `data` as the next version of MODEL; returns the version."""
    return Registry(str(root)).publish(MODEL, data).version


def snapshot_tables(
    root: Path, version: int, model: str = MODEL
) -> tuple[pa.Table, pa.Table, list[float]]:
    """items.arrow, users.arrow and the prior mean of a version, read with plain pyarrow."""
    directory = root / model / f"v{version}"
    items = ipc.open_file(str(directory / "items.arrow")).read_all()
    users = ipc.open_file(str(directory / "users.arrow")).read_all()
    prior = Registry(str(root)).manifest(model, version).prior_mean
    return items, users, prior


def expected_rows(
    root: Path,
    version: int,
    top_n: int | None,
    user_ids: list[str] | None = None,
    model: str = MODEL,
) -> list[dict[str, object]]:
    """Every row the table must hold, in table order, attributes included."""
    items, users, prior = snapshot_tables(root, version, model)
    features = np.array(items.column("features").to_pylist(), dtype=np.float64)
    item_ids = items.column("item_id").to_pylist()
    weights = users.column("w").to_pylist()
    known = dict(zip(users.column("user_id").to_pylist(), weights, strict=True))
    attributes = items.drop_columns(["item_id", "features"]).to_pylist()
    chosen = sorted(set(user_ids) if user_ids is not None else known)
    rows: list[dict[str, object]] = []
    for user in chosen:
        w = np.array(known.get(user, prior), dtype=np.float64)
        scores = [float(np.dot(features[i], w)) for i in range(len(item_ids))]
        order = sorted(range(len(item_ids)), key=lambda i: (-scores[i], item_ids[i]))
        for rank, i in enumerate(order[:top_n] if top_n is not None else order, start=1):
            rows.append(
                {"user_id": user, "rank": rank, "item_id": item_ids[i], "score": scores[i]}
                | attributes[i]
            )
    return rows


def table_rows(directory: Path) -> list[dict[str, object]]:
    """Every row of a published table, parts in name order."""
    parts = sorted(directory.glob("part-*.parquet"))
    return [row for part in parts for row in pq.read_table(part).to_pylist()]


def assert_rows_match(got: list[dict[str, object]], expected: list[dict[str, object]]) -> None:
    """Same rows in the same order; scores within 1e-5 relative, everything else exact."""
    assert len(got) == len(expected)
    for row, want in zip(got, expected, strict=True):
        score, want_score = row.pop("score"), want.pop("score")
        assert isinstance(score, float) and isinstance(want_score, float)
        assert abs(score - want_score) <= 1e-5 * max(abs(want_score), 1e-12), (row, want)
        assert row == want
