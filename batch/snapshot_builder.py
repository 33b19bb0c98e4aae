"""Turn a trained model into the `SnapshotData` that `feature_store` publishes.

The catalog is every item with events plus every item of the attribute table (items without
events get the model's cold-item features, or for `deep` models the tower's features of their
attributes); attribute rows are aligned with the item ids. A `deep` model's snapshot also holds
the item tower (weights and input spec).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch.datasets.reader import known_item_types
from batch.deep.model import DeepFeatureModel
from batch.errors import TrainingError
from batch.train_als import TrainedModel
from feature_store.item_columns import RESERVED_COLUMNS
from feature_store.snapshot_data import SnapshotData


def catalog_ids(item_ids: list[str], attributes: pa.Table | None) -> list[str]:
    """Items with events, then attribute-table items that have none, in table order."""
    if attributes is None:
        return list(item_ids)
    known = set(item_ids)
    extra = [item for item in attributes.column("item_id").to_pylist() if item not in known]
    return [*item_ids, *dict.fromkeys(extra)]


def _filled(column: pa.ChunkedArray) -> pa.ChunkedArray:
    # feature_store refuses null lists and null bools: an item without attributes gets
    # an empty list and false, which filters treat as "has none".
    if pa.types.is_list(column.type) and column.null_count:
        return pc.if_else(pc.is_null(column), pa.scalar([], column.type), column)
    if pa.types.is_boolean(column.type) and column.null_count:
        return pc.fill_null(column, False)
    return column


def aligned_attributes(items: list[str], attributes: pa.Table | None) -> pa.Table | None:
    """Attribute rows in the order of `items` (nulls for items the table lacks), no id column."""
    if attributes is None:
        return None
    table = known_item_types(attributes)
    rows = {item: row for row, item in enumerate(table.column("item_id").to_pylist())}
    take = pa.array([rows.get(item) for item in items], pa.int64())
    names = [name for name in table.column_names if name not in RESERVED_COLUMNS]
    return pa.table({name: _filled(table.column(name).take(take)) for name in names})


def build_snapshot_data(
    user_ids: list[str],
    item_ids: list[str],
    model: TrainedModel,
    attributes: pa.Table | None,
    *,
    kind: str,
    metrics: dict[str, float],
    extra: dict[str, Any],
    training_cutoff: str | None,
) -> SnapshotData:
    """The snapshot of `model` (its only lambda) with the catalog's attributes.

    `user_ids` and `item_ids` name the rows of the model's weights and features.
    """
    if len(model.lams) != 1 or len(model.users) != len(user_ids):
        raise TrainingError(
            f"a published model has one head and weights for all {len(user_ids)} users, got "
            f"{len(model.lams)} heads for {len(model.users)} users"
        )
    found = model.features
    items = catalog_ids(item_ids, attributes)
    cold = np.broadcast_to(found.cold_item, (len(items) - len(item_ids), len(found.cold_item)))
    tower: dict[str, Any] = {}
    if isinstance(found, DeepFeatureModel):
        # Catalog items without events get the tower's features of their attributes.
        cold = found.catalog_features if found.catalog_features is not None else cold
        tower = {"model_weights": found.tower_weights, "tower_spec": found.tower_spec}
        extra = {**extra, "deep_training": found.training}
    features = np.vstack([found.item_features, cold]).astype(np.float32)
    return SnapshotData(
        kind=kind,
        item_ids=items,
        item_features=features,
        item_attributes=aligned_attributes(items, attributes),
        user_ids=user_ids,
        user_weights=model.user_weights[0].astype(np.float32),
        user_counts=model.user_counts,
        user_grams=model.user_grams,
        prior_mean=found.prior_mean,
        lam=model.lams[0],
        noise_std=float(model.train_rmse[0]),
        metrics=metrics,
        training_cutoff=training_cutoff,
        extra=extra,
        **tower,
    )
