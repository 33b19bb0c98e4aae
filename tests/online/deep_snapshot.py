"""A `kind = deep` snapshot built directly (seeded random tower, no Spark) over planted items."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch

from batch.deep.inputs import attribute_rows, build_spec
from feature_store.registry import Registry
from feature_store.snapshot_data import SnapshotData
from feature_store.tower.encode import encode_items
from feature_store.tower.network import ItemTower, featurize, published_weights


def publish_deep(root: str, model: str, items: pa.Table, n_users: int = 20) -> None:
    """Publish `model` v1: features of `items` from a seeded tower, random user weights."""
    torch.manual_seed(0)
    spec = build_spec(items, embed_dim=8, hidden=16, out_dim=4, text_buckets=64, global_mean=3.0)
    tower = ItemTower(spec, id_rows=1).eval()
    ids = [str(item) for item in items.column("item_id").to_pylist()]
    features = featurize(tower, spec, encode_items(spec, attribute_rows(ids, items)))
    rng = np.random.default_rng(0)
    data = SnapshotData(
        kind="deep",
        item_ids=ids,
        item_features=features,
        item_attributes=items.drop_columns(["item_id"]),
        user_ids=[f"u{k}" for k in range(n_users)],
        user_weights=rng.normal(0.0, 0.3, (n_users, spec.dim)).astype(np.float32),
        user_counts=np.full(n_users, 5, dtype=np.int64),
        prior_mean=np.r_[np.zeros(spec.out_dim), [1.0, 0.0]],
        lam=2.0,
        noise_std=0.5,
        model_weights=published_weights(tower),
        tower_spec=spec.to_json(),
    )
    Registry(root).publish(model, data)
