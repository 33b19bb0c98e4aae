"""Score tables built by brute force from a planted snapshot, and the right answers to queries."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import ipc

from feature_store.layout import ITEMS, version_dir
from feature_store.registry import Registry
from feature_store.score_tables import (
    TableManifest,
    next_table_version,
    part_name,
    publish_staged_table,
    table_dir,
    table_schema,
    write_part,
)
from feature_store.snapshot import Snapshot
from feature_store.storage import LocalStorage
from velox.filters import FilterCache

Ranked = list[tuple[str, float]]


def attribute_table(registry: Registry, model: str, version: int) -> pa.Table:
    """The attribute columns of a snapshot's items.arrow, as stored (types and nulls)."""
    storage = registry.storage
    assert isinstance(storage, LocalStorage)
    path = storage.root / model / version_dir(version) / ITEMS
    with pa.memory_map(str(path)) as source:
        items = ipc.open_file(source).read_all()
    return items.drop_columns(["item_id", "features"])


def user_scores(snapshot: Snapshot, user: str) -> np.ndarray:
    """Every item's score for `user` by the score contract, with the snapshot's w_u."""
    w = snapshot.user_weights[snapshot.user_index[user]].astype(np.float64)
    scores: np.ndarray = np.asarray(snapshot.items.features, dtype=np.float64) @ w
    return scores


def ranked(snapshot: Snapshot, scores: np.ndarray, keep: np.ndarray, k: int | None) -> Ranked:
    """Items where `keep`, by score descending then item id ascending; the first `k`."""
    rows = np.flatnonzero(keep)
    order = sorted(rows.tolist(), key=lambda i: (-scores[i], snapshot.item_ids[i]))
    return [(str(snapshot.item_ids[i]), float(scores[i])) for i in order[:k]]


def brute_force_top_k(snapshot: Snapshot, user: str, k: int, where: str | None) -> Ranked:
    """The exact filtered top-k over the whole catalog (the online mask decides the filter)."""
    keep = np.ones(len(snapshot.item_ids), dtype=bool)
    if where:
        keep = np.asarray(FilterCache(snapshot.columns).mask(where))
    return ranked(snapshot, user_scores(snapshot, user), keep, k)


def publish_planted_table(
    registry: Registry,
    model: str,
    *,
    top_n: int | None,
    users_per_part: int = 4,
    make_current: bool = True,
) -> TableManifest:
    """Materialize the current snapshot of `model` by brute force and publish it as a table."""
    snapshot = registry.load(model)
    attributes = attribute_table(registry, model, snapshot.version)
    schema = table_schema(attributes.schema)
    users = sorted(str(u) for u in snapshot.user_ids)
    table_version = next_table_version(registry.storage, model)
    files = {}
    everything = np.ones(len(snapshot.item_ids), dtype=bool)
    for index, start in enumerate(range(0, len(users), users_per_part)):
        chunk = []
        for user in users[start : start + users_per_part]:
            top = ranked(snapshot, user_scores(snapshot, user), everything, top_n)
            rows = [snapshot.item_index[item] for item, _ in top]
            columns = {
                "user_id": pa.array([user] * len(top), pa.string()),
                "rank": pa.array(np.arange(1, len(top) + 1), pa.int32()),
                "item_id": pa.array([item for item, _ in top], pa.string()),
                "score": pa.array([score for _, score in top], pa.float64()),
            }
            picked = attributes.take(pa.array(rows, pa.int64()))
            chunk.append(
                pa.table({**columns, **dict(zip(picked.column_names, picked.columns, strict=True))})
            )
        part = pa.concat_tables(chunk).cast(schema)
        files[part_name(index)] = write_part(registry.storage, model, table_version, index, part)
    return publish_staged_table(
        registry.storage,
        model,
        table_version,
        snapshot_version=snapshot.version,
        top_n=top_n,
        users=len(users),
        items=len(snapshot.item_ids),
        weights="snapshot",
        attributes=attributes.schema,
        files=files,
        make_current=make_current,
    )


def read_parts(registry: Registry, model: str, table_version: int) -> pa.Table:
    """Every row of a table version, parts in order."""
    storage = registry.storage
    assert isinstance(storage, LocalStorage)
    parts = sorted((storage.root / table_dir(model, table_version)).glob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(part) for part in parts])
