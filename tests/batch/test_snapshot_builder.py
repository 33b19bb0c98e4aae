"""Building the published snapshot: catalog, aligned attributes, cold items, via feature_store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from batch.snapshot_builder import aligned_attributes, build_snapshot_data, catalog_ids
from batch.train_als import FeatureModel, TrainedModel
from feature_store.registry import Registry

ATTRIBUTES = pa.table(
    {
        "item_id": ["b", "z", "a"],
        "title": ["Bee", "Zed", "Ay"],
        "year": pa.array([2001, None, 1999], pa.int64()),
        "genres": pa.array([["x"], None, ["x", "y"]], pa.list_(pa.string())),
    }
)


def test_catalog_is_items_with_events_then_attribute_only_items() -> None:
    assert catalog_ids(["a", "b", "c"], ATTRIBUTES) == ["a", "b", "c", "z"]
    assert catalog_ids(["a"], None) == ["a"]


def test_attributes_follow_the_catalog_order_with_nulls_filled() -> None:
    aligned = aligned_attributes(["a", "b", "c", "z"], ATTRIBUTES)
    assert aligned is not None
    assert aligned.column_names == ["title", "year", "genres"]
    assert aligned.column("year").type == pa.int32()  # the known type of `year`
    assert aligned.to_pylist() == [
        {"title": "Ay", "year": 1999, "genres": ["x", "y"]},
        {"title": "Bee", "year": 2001, "genres": ["x"]},
        {"title": None, "year": None, "genres": []},  # no attribute row: empty genres
        {"title": "Zed", "year": None, "genres": []},
    ]


def test_published_snapshot_holds_features_weights_and_cold_items(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    features, weights = rng.normal(size=(3, 4)), rng.normal(size=(1, 2, 4))
    found = FeatureModel(
        item_features=features,
        prior_mean=weights[0].mean(axis=0),
        own_weights=weights[0],
        lam_eb=2.0,
        cold_item=np.array([0.0, 0.0, 3.5, 1.0]),
        relevance_threshold=3.5,
    )
    model = TrainedModel(
        features=found,
        choices=(("population", 1.25),),
        lams=(2.5,),
        users=np.arange(2),
        user_weights=weights,
        user_counts=np.array([5, 7]),
        train_rmse=np.array([0.8]),
        test_rmse=np.array([np.nan]),
    )
    data = build_snapshot_data(
        ["u1", "u2"], ["a", "b", "c"], model, ATTRIBUTES, kind="mf", metrics={"holdout_rmse": 0.9},
        extra={"dataset": "test"}, training_cutoff=None,
    )  # fmt: skip
    registry = Registry(str(tmp_path))
    manifest = registry.publish("m", data)
    snapshot = registry.load("m")
    assert (manifest.lam, manifest.noise_std, manifest.metrics) == (2.5, 0.8, {"holdout_rmse": 0.9})
    assert list(snapshot.item_ids) == ["a", "b", "c", "z"]
    np.testing.assert_array_equal(snapshot.items.features[:3], features.astype(np.float32))
    np.testing.assert_array_equal(snapshot.items.features[3], [0.0, 0.0, 3.5, 1.0])
    np.testing.assert_array_equal(snapshot.user_weights, weights[0].astype(np.float32))
    np.testing.assert_array_equal(snapshot.user_counts, [5, 7])
    np.testing.assert_allclose(snapshot.w0_for("new-user"), weights[0].mean(axis=0))
