"""Publish then load gives back exactly what was published, on every storage backend."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from feature_store.item_columns import OBJECT_SLICE
from feature_store.manifest import FORMAT_VERSION
from feature_store.registry import Registry
from feature_store.snapshot import load_snapshot
from feature_store.snapshot_data import SnapshotData
from tests.feature_store.planted import planted_data
from velox.filters.columns import ColumnKind, ListColumn


def test_every_array_and_field_round_trips_exactly(registry: Registry) -> None:
    data = planted_data(seed=3, weights=True)
    manifest = registry.publish("movies", data)
    snapshot = registry.load("movies")

    assert snapshot.manifest == manifest == registry.manifest("movies", 1)
    assert (snapshot.model, snapshot.version, snapshot.dim) == ("movies", 1, 6)
    assert (manifest.format_version, manifest.kind, manifest.parent) == (FORMAT_VERSION, "mf", None)
    assert (snapshot.lam, snapshot.noise_std) == (data.lam, data.noise_std)
    assert manifest.metrics == data.metrics
    assert manifest.training_cutoff == data.training_cutoff
    assert manifest.extra == {"tag": "", "rank": 6}
    assert sorted(manifest.files) == ["items.arrow", "users.arrow", "weights.safetensors"]

    assert snapshot.item_ids.tolist() == data.item_ids
    np.testing.assert_array_equal(snapshot.items.features, data.item_features)
    assert snapshot.items.features.dtype == np.float32
    norms = np.linalg.norm(data.item_features.astype(np.float64), axis=1)
    np.testing.assert_allclose(snapshot.items.norms, norms, rtol=1e-12)
    assert snapshot.item_index == {item: i for i, item in enumerate(data.item_ids)}

    assert snapshot.user_ids.tolist() == data.user_ids
    np.testing.assert_array_equal(snapshot.user_weights, data.user_weights)
    np.testing.assert_array_equal(snapshot.user_counts, data.user_counts)
    assert snapshot.user_counts.dtype == np.int64
    assert snapshot.user_index == {user: i for i, user in enumerate(data.user_ids)}
    np.testing.assert_array_equal(snapshot.prior_mean, data.prior_mean)

    assert data.model_weights is not None and snapshot.model_weights is not None
    assert snapshot.model_weights.keys() == data.model_weights.keys()
    for name, tensor in data.model_weights.items():
        np.testing.assert_array_equal(snapshot.model_weights[name], tensor)
        assert snapshot.model_weights[name].dtype == tensor.dtype


def test_attribute_columns_convert_with_missing_values(registry: Registry) -> None:
    data = planted_data(seed=4)
    registry.publish("movies", data)
    columns = registry.load("movies").columns
    attributes = data.item_attributes
    assert attributes is not None

    def array(name: str) -> NDArray[Any]:
        column = columns.data[name]
        assert isinstance(column, np.ndarray)
        return column

    assert columns.n == 40
    assert dict(columns.kinds) == {
        "item": ColumnKind.STRING,
        "title": ColumnKind.STRING,
        "year": ColumnKind.NUMBER,
        "rating": ColumnKind.NUMBER,
        "price": ColumnKind.NUMBER,
        "genres": ColumnKind.STRING_LIST,
        "is_new": ColumnKind.BOOL,
    }
    assert array("item").tolist() == data.item_ids
    assert array("title").tolist() == attributes["title"].to_pylist()
    assert array("title")[0] is None
    np.testing.assert_array_equal(array("year"), attributes["year"].to_numpy())
    assert array("year").dtype == np.int64
    np.testing.assert_array_equal(array("rating"), attributes["rating"].to_numpy())
    prices = array("price")
    assert math.isnan(prices[-1])
    assert prices[:-1].tolist() == attributes["price"].to_pylist()[:-1]
    assert array("is_new").tolist() == attributes["is_new"].to_pylist()
    genres = columns.data["genres"]
    assert isinstance(genres, ListColumn)
    rebuilt = [genres.values[genres.offsets[i] : genres.offsets[i + 1]].tolist() for i in range(40)]
    assert rebuilt == attributes["genres"].to_pylist()
    for name, column in columns.data.items():
        arrays = [column.offsets, column.values] if isinstance(column, ListColumn) else [column]
        assert all(not array.flags.writeable for array in arrays), name


def test_w0_for_known_user_is_its_batch_weights_else_the_population_prior(
    registry: Registry,
) -> None:
    data = planted_data(seed=5)
    registry.publish("movies", data)
    snapshot = registry.load("movies")

    known = snapshot.w0_for("user-7")
    assert known.dtype == np.float64
    np.testing.assert_array_equal(known, data.user_weights[7].astype(np.float64))
    unknown = snapshot.w0_for("someone-new")
    assert unknown.dtype == np.float64
    np.testing.assert_array_equal(unknown, np.asarray(data.prior_mean, dtype=np.float64))


def test_a_model_without_users_or_attributes_loads(registry: Registry) -> None:
    data = planted_data(seed=6, m=0, attributes=False)
    registry.publish("cold", data)
    snapshot = registry.load("cold")
    assert snapshot.user_weights.shape == (0, 6)
    assert snapshot.user_index == {}
    assert list(snapshot.columns.kinds) == ["item"]
    np.testing.assert_array_equal(snapshot.w0_for("anyone"), data.prior_mean)


def test_load_snapshot_reads_a_path_and_a_file_uri(tmp_path: Path) -> None:
    Registry(str(tmp_path)).publish("m", planted_data(seed=7))
    for root in (str(tmp_path), tmp_path.as_uri()):
        snapshot = load_snapshot(root, "m", 1)
        np.testing.assert_array_equal(snapshot.items.features, planted_data(seed=7).item_features)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    n=st.integers(1, 30),
    m=st.integers(0, 10),
    d=st.integers(1, 9),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_property(local_registry: Registry, n: int, m: int, d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.integers(-30, 30)  # extreme but finite float32 magnitudes survive too
    data = SnapshotData(
        kind="deep",
        item_ids=[f"i{seed}-{k}-ü" for k in range(n)],
        item_features=(rng.normal(size=(n, d)) * scale).astype(np.float32),
        item_attributes=pa.table({"x": rng.integers(-5, 5, size=n)}),
        user_ids=[f"u{k}" for k in range(m)],
        user_weights=rng.normal(size=(m, d)).astype(np.float32),
        user_counts=rng.integers(0, 9, size=m),
        prior_mean=rng.normal(size=d),
        lam=1.0,
        noise_std=0.0,
    )
    manifest = local_registry.publish("p", data)
    snapshot = local_registry.load("p", manifest.version)
    assert snapshot.item_ids.tolist() == data.item_ids
    np.testing.assert_array_equal(snapshot.items.features, data.item_features)
    np.testing.assert_array_equal(snapshot.user_weights, data.user_weights)
    np.testing.assert_array_equal(snapshot.user_counts, data.user_counts)
    assert data.item_attributes is not None
    np.testing.assert_array_equal(snapshot.columns.data["x"], data.item_attributes["x"])


def test_filters_run_over_the_loaded_attributes(registry: Registry) -> None:
    data = planted_data(seed=8)
    registry.publish("movies", data)
    snapshot = registry.load("movies")
    attributes = data.item_attributes
    assert attributes is not None
    years = attributes["year"].to_pylist()
    genres = attributes["genres"].to_pylist()

    mask = snapshot.filters.mask("year >= 1980 and genres contains 'Drama'")
    expected = [y >= 1980 and "Drama" in g for y, g in zip(years, genres, strict=True)]
    assert mask.tolist() == expected
    assert snapshot.filters.mask("item in ('item-8-3', 'item-8-5')").nonzero()[0].tolist() == [3, 5]
    assert not snapshot.filters.mask("title contains 'Title'")[0]  # a null title never matches


def test_ids_and_strings_longer_than_one_conversion_slice(local_registry: Registry) -> None:
    n = OBJECT_SLICE * 2 + 5
    tags = [None if k % 1000 == 0 else f"tag{k % 97}" for k in range(n)]
    data = SnapshotData(
        kind="mf",
        item_ids=[f"i{k}" for k in range(n)],
        item_features=np.arange(2 * n, dtype=np.float32).reshape(n, 2),
        item_attributes=pa.table({"tag": pa.array(tags, pa.string())}),
        user_ids=[],
        user_weights=np.zeros((0, 2), np.float32),
        user_counts=np.zeros(0, np.int64),
        prior_mean=np.zeros(2),
        lam=1.0,
        noise_std=1.0,
    )
    local_registry.publish("big", data)
    snapshot = local_registry.load("big")
    assert snapshot.item_ids.tolist() == data.item_ids
    assert snapshot.item_index["i70000"] == 70000 and len(snapshot.item_index) == n
    tag = snapshot.columns.data["tag"]
    assert isinstance(tag, np.ndarray) and tag.tolist() == tags


def test_chunked_attribute_columns_are_combined(local_registry: Registry) -> None:
    data = planted_data(seed=9, attributes=False)
    chunked = pa.chunked_array([pa.array(range(20)), pa.array(range(20, 40))])
    local_registry.publish("m", replace(data, item_attributes=pa.table({"rank": chunked})))
    rank = local_registry.load("m").columns.data["rank"]
    assert isinstance(rank, np.ndarray) and rank.tolist() == list(range(40))
