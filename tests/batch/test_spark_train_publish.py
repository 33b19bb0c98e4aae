"""Train, evaluate and publish on planted data with real Spark; assert on the snapshot."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pyarrow.dataset as ds
import pytest
from numpy.typing import NDArray
from pyspark.sql import SparkSession
from pyspark.sql import functions as sf

from batch.biases import RESIDUAL, fit_biases
from batch.datasets.reader import read_attributes, read_events
from batch.datasets.synthetic import SyntheticSpec, SyntheticTruth, generate_synthetic
from batch.errors import GateRejectedError
from batch.exposure_term import add_exposure_term
from batch.factorize import fit_factors
from batch.head_choice import choose_head, judge_head
from batch.options import TrainOptions
from batch.prepare import PreparedEvents, prepare_events
from batch.splits import for_choosing, for_testing, no_holdout, user_time_parts
from batch.stages import concurrently
from batch.subspace import subspace_r2
from batch.train_als import EXPOSURE, als_settings, fit_features
from batch.train_command import train_and_publish
from feature_store.manifest import Manifest
from feature_store.registry import Registry
from feature_store.snapshot_data import SnapshotData

pytestmark = pytest.mark.spark

SPEC = SyntheticSpec(n_events=12_000, rank=4, noise=0.5, n_users=240, n_items=150, seed=5)
OPTIONS = TrainOptions(dataset=None, model="planted", rank=4, iterations=8, max_eval_users=100)


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> SyntheticTruth:
    """12k events from a rank-4 planted model with noise 0.5."""
    return generate_synthetic(tmp_path_factory.mktemp("planted") / "data", SPEC)


@pytest.fixture(scope="module")
def prepared(spark: SparkSession, truth: SyntheticTruth) -> PreparedEvents:
    """The planted events, read and indexed by Spark."""
    return prepare_events(read_events(spark, truth.files.events))


@pytest.fixture(scope="module")
def published(
    prepared: PreparedEvents, truth: SyntheticTruth, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Registry, Manifest]:
    """The registry after one train-evaluate-publish run, and the published manifest."""
    registry = Registry(str(tmp_path_factory.mktemp("snapshots")))
    items = read_attributes(truth.files.items, "item_id")
    # On this planted data the most popular items rank a little better than the rating head,
    # within the 95 % intervals: the gate warns and promotes (tests/batch/test_gate_popularity).
    manifest = train_and_publish(prepared, items, OPTIONS, registry, dataset="planted")
    return registry, manifest


def test_item_features_recover_the_planted_subspace(
    published: tuple[Registry, Manifest], truth: SyntheticTruth
) -> None:
    snapshot = published[0].load("planted")
    rows = [snapshot.item_index[item] for item in truth.item_ids]
    planted = np.hstack([truth.item_factors, truth.item_bias[:, None]])
    assert subspace_r2(planted, snapshot.items.features[rows]) >= 0.9


def test_batch_weights_are_the_chosen_ridge_posterior(
    published: tuple[Registry, Manifest], truth: SyntheticTruth, prepared: PreparedEvents
) -> None:
    registry, manifest = published
    snapshot = registry.load("planted")
    selection = manifest.extra["lambda_selection"]
    prior_kind, _ = selection["chosen"]
    term = tuple(selection["exposure_term"])
    # Spark's ALS is deterministic given its seed: the refit has the published features.
    shape = (prepared.n_users, prepared.n_items)
    kappa, fraction = selection["exposure_prior"]
    base = fit_features(no_holdout(prepared.frame), shape, OPTIONS)
    fitted = base.with_exposure_prior(kappa, fraction * base.relevance_threshold)
    if prior_kind == "population":
        priors = np.broadcast_to(snapshot.prior_mean, (len(snapshot.user_ids), snapshot.dim))
    else:  # each user's own ALS weights
        priors = fitted.own_weights
    events = ds.dataset(truth.files.events, partitioning="hive").to_table()
    users = np.asarray(events.column("user_id").to_pylist())
    items = events.column("item_id").to_pylist()
    rewards = events.column("reward").to_numpy()
    features = snapshot.items.features.astype(np.float64)
    lam, dim = snapshot.lam, snapshot.dim
    for user in ["u0", "u17", "u203"]:
        row = snapshot.user_index[user]
        mine = np.flatnonzero(users == user)
        x = features[[snapshot.item_index[items[k]] for k in mine]]
        w = np.linalg.solve(lam * np.eye(dim) + x.T @ x, lam * priors[row] + x.T @ rewards[mine])
        if term[0] > 0:  # the chosen exposure term on top (batch.exposure_term)
            assert fitted.exposure_directions is not None
            w = add_exposure_term(
                features, w[None], fitted.exposure_directions[[row]], np.array([len(mine)]),
                (term[0], term[1]), fitted.layout["constant"][0],
            )[0]  # fmt: skip
        stored = snapshot.user_weights[row]
        np.testing.assert_allclose(stored, w, rtol=2e-5, atol=2e-6)  # float32 storage
        assert snapshot.user_counts[row] == len(mine)
        # The online prior's precision is the batch head's own (docs/snapshot_format.md).
        precision = snapshot.precision_for(user)
        assert precision is not None
        np.testing.assert_allclose(precision, lam * np.eye(dim) + x.T @ x, rtol=1e-5, atol=1e-4)
        score = float(snapshot.items.features[0] @ stored)  # the score contract: one dot product
        assert score == pytest.approx(float(features[0] @ w), rel=1e-4)


def test_manifest_reports_metrics_cutoff_and_prior(
    published: tuple[Registry, Manifest], prepared: PreparedEvents
) -> None:
    manifest = published[1]
    assert manifest.dim == 2 * OPTIONS.rank + 2 and manifest.kind == "mf"
    for protocol in ("global_time", "holdout", "random_split"):
        for metric in ("rmse", "recall@10", "ndcg@10", "coverage@10"):
            assert f"{protocol}_{metric}" in manifest.metrics
        for metric in ("recall@10", "ndcg@10"):  # the baseline of the same run, beside them
            assert f"{protocol}_most_popular_{metric}" in manifest.metrics
            low, high = manifest.extra["intervals"][protocol][metric]
            assert low <= manifest.metrics[f"{protocol}_{metric}"] <= high
    # noise 0.5 is the floor; a sound fit lands near it
    assert 0.5 < manifest.metrics["random_split_rmse"] < 0.65
    assert 0.5 < manifest.metrics["holdout_rmse"] < 0.7
    assert 0.4 < manifest.noise_std < 0.6
    assert manifest.training_cutoff == prepared.cutoff
    assert manifest.extra["dataset"] == "planted"
    selection = manifest.extra["lambda_selection"]
    chosen = {"prior": selection["chosen"][0], "multiplier": selection["chosen"][1]}
    candidates = [{k: c[k] for k in chosen} for c in selection["validation"]]
    assert chosen in candidates and manifest.lam > 0
    snapshot = published[0].load("planted")
    assert {"title", "year", "genres", "price"} <= set(snapshot.columns.kinds)
    if selection["exposure_prior"][0] == 0.0:  # features not whitened by an exposure prior
        np.testing.assert_allclose(snapshot.prior_mean[-2], 1.0)  # weight on mu + b_i


def test_gate_refuses_a_model_worse_than_the_current_one(
    published: tuple[Registry, Manifest], prepared: PreparedEvents, truth: SyntheticTruth
) -> None:
    registry, first = published
    snapshot = registry.load("planted", first.version)
    better = {
        name: value * (0.5 if "rmse" in name else 2.0) for name, value in first.metrics.items()
    }
    registry.publish(
        "planted",
        SnapshotData(
            kind="mf",
            item_ids=list(snapshot.item_ids),
            item_features=np.array(snapshot.items.features),
            user_ids=list(snapshot.user_ids),
            user_weights=np.array(snapshot.user_weights),
            user_counts=np.array(snapshot.user_counts),
            prior_mean=snapshot.prior_mean,
            lam=snapshot.lam,
            noise_std=snapshot.noise_std,
            metrics=better,
            extra=first.extra,
        ),
    )
    current = registry.current("planted")
    items = read_attributes(truth.files.items, "item_id")
    with pytest.raises(GateRejectedError, match=f"worse than the current version {current}"):
        train_and_publish(prepared, items, OPTIONS, registry, dataset="planted")
    assert registry.current("planted") == current
    assert registry.versions("planted") == [1, 2, 3]  # published for inspection, not promoted


def test_implicit_feedback_ranks_far_better_than_chance(prepared: PreparedEvents) -> None:
    options = replace(OPTIONS, implicit=True)
    parts = user_time_parts(prepared.frame, 0.2, 0.2, options.min_user_events)
    shape = (prepared.n_users, prepared.n_items)
    choosing = for_choosing(parts)
    choice, _ = choose_head(choosing, fit_features(choosing, shape, options), shape, options)
    assert (choice.prior, choice.multiplier) == ("own ALS weights", 1.0)  # the ALS factors
    testing = for_testing(parts)
    found = judge_head(testing, fit_features(testing, shape, options), shape, options, choice)
    assert "rmse" not in found  # implicit rewards are not ratings
    chance = 10 / prepared.n_items
    assert found["recall@10"]["value"] > 2 * chance


def test_concurrent_feature_fits_equal_sequential_ones(prepared: PreparedEvents) -> None:
    # fit_features runs its rating and exposure ALS side by side, and train_and_publish runs
    # several fit_features side by side: neither may change a result fixed by the seed.
    frame, shape, rank = no_holdout(prepared.frame), (prepared.n_users, prepared.n_items), 4
    settings = als_settings(OPTIONS)
    biases, residual = fit_biases(frame, *shape)
    rating = fit_factors(residual, RESIDUAL, settings, implicit=False, shape=shape)
    exposed = frame.withColumn(EXPOSURE, sf.lit(1.0))
    exposure = fit_factors(exposed, EXPOSURE, settings, implicit=True, shape=shape)

    def mean_norm(matrix: NDArray[np.float64]) -> float:
        norms = np.linalg.norm(matrix, axis=1)
        return float(norms[norms > 0].mean())

    scale = mean_norm(rating.item) / mean_norm(exposure.item)  # same mean norm as the rating
    expected = np.hstack(
        [rating.item, scale * exposure.item, (biases.mean + biases.item)[:, None]]
    ).astype(np.float32)
    fit = partial(fit_features, frame, shape, OPTIONS)
    for model in concurrently({"first": fit, "second": fit}).values():
        np.testing.assert_array_equal(model.item_features[:, : 2 * rank + 1], expected)
        seen = rating.users_seen
        np.testing.assert_array_equal(model.own_weights[seen, :rank], rating.user[seen])
