"""The two-tower model on planted content data, through Spark, torch (CPU) and a snapshot."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from pyspark.sql import SparkSession

from batch import head_choice
from batch.datasets.reader import read_attributes, read_events
from batch.deep.features import EXPOSURE_WEIGHT, trained_user_weights
from batch.deep.hybrid import fit_hybrid_features
from batch.deep.inputs import build_spec
from batch.deep.model import DeepFeatureModel
from batch.options import TrainOptions
from batch.prepare import prepare_events
from batch.splits import no_holdout
from batch.train_als import fit_features
from batch.train_command import train_and_publish
from feature_store.errors import SnapshotCorruptError
from feature_store.layout import TOWER_SPEC, WEIGHTS
from feature_store.registry import Registry
from feature_store.snapshot import Snapshot
from feature_store.tower.encode import encode_items
from feature_store.tower.network import featurize, load_tower
from feature_store.tower.spec import TowerSpec
from tests.batch.deep_planted import PlantedContent, planted_content

pytestmark = [pytest.mark.spark, pytest.mark.slow]

OPTIONS = TrainOptions(
    dataset=None,
    model="deep",
    kind="deep",
    max_eval_users=100,
    deep_epochs=30,
    deep_dim=8,
    deep_embed=16,
    deep_hidden=32,
    deep_batch_size=256,
    deep_distill_epochs=60,  # the hybrid's 3 towers x 6 trainings stay short on 80 items
    device="cpu",
)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> PlantedContent:
    """Ratings planted from genres and year; 20 % of the items have no training events."""
    return planted_content(tmp_path_factory.mktemp("deep") / "data")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The snapshot root of this module."""
    return tmp_path_factory.mktemp("snapshots")


@pytest.fixture(scope="module")
def registry(spark: SparkSession, planted: PlantedContent, root: Path) -> Registry:
    """A registry holding deep snapshots trained on the warm items' events: `deep` (the
    hybrid, the default) and `deep-joint` (deep_warm_factors "joint")."""
    registry = Registry(str(root))
    prepared = prepare_events(read_events(spark, planted.events_path))
    items = read_attributes(planted.items_path, "item_id")
    train_and_publish(prepared, items, OPTIONS, registry, dataset="planted")
    joint = replace(OPTIONS, model="deep-joint", deep_warm_factors="joint")
    train_and_publish(prepared, items, joint, registry, dataset="planted")
    prepared.frame.unpersist()
    return registry


def _cold_scores(
    snapshot: Snapshot, planted: PlantedContent
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    events = planted.cold_events
    users, items = events.column("user_id").to_pylist(), events.column("item_id").to_pylist()
    rows = [snapshot.item_index[item] for item in items]
    weights = np.stack([snapshot.w0_for(user) for user in users])
    scores = np.einsum("ij,ij->i", snapshot.items.features[rows].astype(np.float64), weights)
    return scores, events.column("reward").to_numpy()


@pytest.mark.parametrize("model", ["deep", "deep-joint"])  # the hybrid, the joint towers
def test_cold_items_are_scored_from_their_content(
    registry: Registry, planted: PlantedContent, model: str
) -> None:
    snapshot = registry.load(model)
    assert snapshot.manifest.kind == "deep"
    scores, rewards = _cold_scores(snapshot, planted)
    content_rmse = float(np.sqrt(np.mean((scores - rewards) ** 2)))
    # Popularity has nothing on an item without events: its best guess is the global mean.
    mean_rmse = float(np.sqrt(np.mean((rewards.mean() - rewards) ** 2)))
    assert content_rmse < 0.6 * mean_rmse
    assert np.corrcoef(scores, rewards)[0, 1] > 0.8


def test_the_deep_head_choice_offers_every_exposure_prior(registry: Registry) -> None:
    """The deep features get the same exposure-prior grid as ALS (validation rows choose)."""
    selection = registry.load("deep").manifest.extra["lambda_selection"]
    offered = {(row["kappa"], row["target_fraction"]) for row in selection["validation"]}
    assert offered == set(head_choice.EXPOSURE_GRID)
    assert tuple(selection["exposure_prior"]) in offered


def test_the_published_tower_recomputes_the_snapshot_features(
    registry: Registry, planted: PlantedContent
) -> None:
    snapshot = registry.load("deep")
    assert snapshot.tower_spec is not None and snapshot.model_weights is not None
    tower = load_tower(snapshot.tower_spec, snapshot.model_weights)
    rows = {r["item_id"]: r for r in planted.items.to_pylist()}
    encoded = encode_items(snapshot.tower_spec, [rows[item] for item in planted.cold])
    computed = featurize(tower, snapshot.tower_spec, encoded)
    stored = snapshot.items.features[[snapshot.item_index[item] for item in planted.cold]]
    np.testing.assert_allclose(computed, stored, rtol=1e-5, atol=1e-5)
    # Before the chosen exposure prior's change of basis T (if any), the last feature is 1.
    transform = np.array(snapshot.tower_spec.feature_transform or np.eye(snapshot.tower_spec.dim))
    before = computed.astype(np.float64) @ np.linalg.inv(transform).T
    np.testing.assert_allclose(before[:, -1], 1.0, atol=1e-5)


@pytest.mark.parametrize("name", [WEIGHTS, TOWER_SPEC])
def test_a_changed_tower_file_is_refused(
    registry: Registry, root: Path, tmp_path: Path, name: str
) -> None:
    assert registry.current("deep") == 1
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    target = copy / "deep" / "v1" / name
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(SnapshotCorruptError, match="sha256"):
        Registry(str(copy)).load("deep", 1)


def test_the_exposure_prior_basis_reaches_the_tower(
    registry: Registry, planted: PlantedContent
) -> None:
    snapshot = registry.load("deep")
    assert snapshot.tower_spec is not None and snapshot.model_weights is not None
    spec = replace(snapshot.tower_spec, feature_transform=None)
    tower = load_tower(spec, snapshot.model_weights)
    rows = {r["item_id"]: r for r in planted.items.to_pylist()}
    warm = [item for item in rows if item not in planted.cold]

    def computed(items: list[str], with_spec: TowerSpec) -> NDArray[np.float64]:
        encoded = encode_items(with_spec, [rows[item] for item in items])
        return featurize(tower, with_spec, encoded).astype(np.float64)

    model = DeepFeatureModel(
        item_features=computed(warm, spec),
        prior_mean=np.zeros(spec.dim),
        own_weights=np.zeros((3, spec.dim)),
        lam_eb=1.0,
        cold_item=computed(planted.cold[:1], spec)[0],
        relevance_threshold=3.0,
        catalog_features=computed(planted.cold, spec),
        tower_weights=snapshot.model_weights,
        tower_spec=spec.to_json(),
    )
    moved = model.with_exposure_prior(2.0, 1.0)
    assert isinstance(moved, DeepFeatureModel) and moved.catalog_features is not None
    assert not np.allclose(moved.item_features, model.item_features)
    new_spec = TowerSpec.from_json(moved.tower_spec)
    np.testing.assert_allclose(computed(warm, new_spec), moved.item_features, atol=1e-5)
    np.testing.assert_allclose(computed(planted.cold, new_spec), moved.catalog_features, atol=1e-5)


def test_trained_user_weights_add_the_centred_exposure_logit() -> None:
    """Closed form: own weights . x_i = rating score + beta (y_i . q_u - mean over u's items)."""
    k, rng = 3, np.random.default_rng(7)
    spec = build_spec(
        None, embed_dim=4, hidden=4, out_dim=k, text_buckets=8, global_mean=3.5,
        block_scales=[1.0, 2.5],
    )  # fmt: skip
    z, y, b = rng.normal(size=(6, k)), rng.normal(size=(6, k)), rng.normal(size=6)
    features = np.hstack([z, 2.5 * y, (3.5 + b)[:, None], np.ones((6, 1))])
    vectors, bias = rng.normal(size=(4, 2 * k)), rng.normal(size=4)
    users, items = np.array([0, 0, 0, 1, 1, 2, 3]), np.array([0, 1, 2, 3, 4, 5, 0])
    counts = np.bincount(users, minlength=4)
    own = trained_user_weights(vectors, bias, spec, features, (users, items, counts))
    beta, p, q = EXPOSURE_WEIGHT, vectors[:, :k], vectors[:, k:]
    rating = p @ z.T + (3.5 + b)[None, :] + bias[:, None]  # (users, items)
    logit = q @ y.T
    centre = np.array([logit[u, items[users == u]].mean() for u in range(4)])
    expected = rating + beta * (logit - centre[:, None])
    np.testing.assert_allclose(own @ features.T, expected, rtol=1e-5, atol=1e-5)
    assert beta > 0


def test_the_hybrid_keeps_als_features_for_known_items(
    spark: SparkSession, planted: PlantedContent
) -> None:
    """deep_warm_factors "als": the items with training events get the same job's ALS
    features, and the user side is ALS's; only items without events come from the tower."""
    prepared = prepare_events(read_events(spark, planted.events_path))
    frame = no_holdout(prepared.frame)
    shape = (prepared.n_users, prepared.n_items)
    items = read_attributes(planted.items_path, "item_id")
    options = replace(OPTIONS, deep_distill_epochs=20)
    als = fit_features(frame, shape, options)
    hybrid = fit_hybrid_features(
        frame, shape, options, item_ids=prepared.item_ids, attributes=items
    )
    np.testing.assert_allclose(hybrid.item_features, als.item_features, atol=1e-6)
    np.testing.assert_allclose(hybrid.own_weights, als.own_weights, atol=1e-6)
    assert hybrid.lam_eb == pytest.approx(als.lam_eb) and hybrid.layout == als.layout
    assert hybrid.catalog_features is not None  # the cold items, from their attributes
    assert hybrid.catalog_features.shape == (len(planted.cold), als.item_features.shape[1])
    assert hybrid.training["warm_factors"] == "als"
    prepared.frame.unpersist()
