"""Fit the two-tower model on a frame's training rows and express it as a `FeatureModel`.

Item features are the tower's `[z_i, s y_i, global_mean + b_i, 1]` (with the item's id row for
items that have training events; y_i the exposure block, trained on "did the user rate this
item" against drawn items). The users' trained weights `[p_u, beta q_u / s, 1, b_u - beta c_u]`
score the network's rating plus beta times its exposure logit `y_i . q_u`, centred on the
user's rated items (c_u, so the rating fit barely moves): the implicit "which items this user
chooses" signal is in the prior, where a ridge head fitted on ratings alone could not find it
(every rated item is chosen). They serve as each user's own prior and, averaged, as the
population prior of the ridge heads that `batch.train_als.fit_users` fits, as for ALS.
Lambda_EB is the training residual variance over the per-coordinate variance of the trained
user vectors. Item cold start: text words found in fewer than `deep_min_word_items` trained
items are not read (batch.deep.inputs.keep_shared_words), and the unseen id row's output is
calibrated to the id path's mean and covariance (batch.deep.calibration); the exposure block's
user vectors are the exposure term's directions (batch.exposure_term).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray
from pyspark.sql import DataFrame

from batch.deep.calibration import calibrate_unseen
from batch.deep.hybrid import fit_hybrid_features, tower_inputs
from batch.deep.launch import run_training
from batch.deep.model import DeepFeatureModel
from batch.deep.train_torch import TowerJob, item_features
from batch.deep.training_data import write_training_rows
from batch.errors import TrainingError
from batch.options import TrainOptions
from batch.spark import is_local
from batch.train_als import _empirical_bayes_lambda, _mean_norm
from feature_store.tower.encode import EncodedItems, encode_items
from feature_store.tower.spec import TowerSpec

WARM_FACTORS = ("als", "joint")
"""Where known items' features come from: the same job's ALS (hybrid) or the joint towers."""
ValidationRows = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]


def _rows_dir(frame: DataFrame) -> str:
    """Local: a temporary folder. Cluster: under the (shared) Spark checkpoint directory."""
    context = frame.sparkSession.sparkContext
    if is_local(context.master or "local"):
        return tempfile.mkdtemp(prefix="velox-deep-rows-")
    shared = context.getCheckpointDir()
    if shared is None:
        raise ValueError("a cluster run of --kind deep needs spark.checkpoint.dir (shared storage)")
    return f"{shared}/velox-deep-rows-{uuid.uuid4().hex}"


def tower_job(
    options: TrainOptions,
    rows_path: str,
    spec_json: str,
    items: EncodedItems,
    n_users: int,
    validation: ValidationRows | None = None,
) -> TowerJob:
    """The `TowerJob` of `options` for rows at `rows_path` (the bench reuses this)."""
    return TowerJob(
        rows_path=rows_path,
        spec_json=spec_json,
        items=items,
        n_users=n_users,
        implicit=options.implicit,
        epochs=options.deep_epochs,
        batch_size=options.deep_batch_size,
        lr=options.deep_lr,
        weight_decay=options.deep_weight_decay,
        id_dropout=options.deep_id_dropout,
        negatives=options.deep_negatives,
        device=options.device,
        seed=options.seed,
        validation=validation,
    )


def fit_deep_features(
    frame: DataFrame,
    shape: tuple[int, int],
    options: TrainOptions,
    *,
    item_ids: Sequence[str],
    attributes: pa.Table | None,
) -> DeepFeatureModel:
    """Train the towers on `frame`'s training rows (u, i, r, test); `shape` = (users, items).

    Explicit ratings with `deep_warm_factors` "als" (the default): the hybrid model
    (batch.deep.hybrid). "joint", and implicit feedback: the two towers trained jointly here.
    """
    if options.deep_warm_factors not in WARM_FACTORS:
        raise TrainingError(
            f"deep_warm_factors must be one of {', '.join(WARM_FACTORS)}, "
            f"not {options.deep_warm_factors!r}"
        )
    if options.deep_warm_factors == "als" and not options.implicit:
        return fit_hybrid_features(frame, shape, options, item_ids=item_ids, attributes=attributes)
    n_items = shape[1]
    rows_path = write_training_rows(
        frame,
        f"{_rows_dir(frame)}/rows.parquet",
        implicit=options.implicit,
        negatives=options.deep_negatives,
        n_items=n_items,
        seed=options.seed,
    )
    try:
        table = pq.read_table(rows_path, columns=["u", "i", "r"])
        trained = _train(frame, options, shape, rows_path, table, item_ids, attributes)
    finally:
        _remove_local(rows_path)
    return trained


def _train(
    frame: DataFrame,
    options: TrainOptions,
    shape: tuple[int, int],
    rows_path: str,
    table: pa.Table,
    item_ids: Sequence[str],
    attributes: pa.Table | None,
) -> DeepFeatureModel:
    n_users, n_items = shape
    users, items, rewards = (table.column(n).to_numpy() for n in ("u", "i", "r"))
    positive = rewards > 0 if options.implicit else np.ones(len(rewards), dtype=bool)
    global_mean = 0.0 if options.implicit else float(rewards.mean())
    seen_items = np.bincount(items[positive], minlength=n_items) > 0
    spec, attrs, _ = tower_inputs(
        options,
        item_ids,
        attributes,
        seen_items,
        out_dim=options.deep_dim,
        global_mean=global_mean,
        blocks=1 if options.implicit else 2,
    )
    id_rows = np.where(seen_items, np.arange(1, n_items + 1), 0)
    encoded = encode_items(spec, attrs[:n_items], id_rows)
    job = tower_job(options, rows_path, spec.to_json(), encoded, n_users)
    result = run_training(frame.sparkSession, job)
    state = result.tower_state
    k, learned = options.deep_dim, spec.blocks * options.deep_dim
    if options.deep_calibrate_unseen and seen_items.any():
        spec = calibrate_unseen(state, spec, encoded, seen_items)
    if spec.blocks == 2:  # the exposure block gets the rating block's mean norm (as ALS's)
        raw = item_features(state, spec, encoded)
        scale = _mean_norm(raw[:, :k]) / max(_mean_norm(raw[:, k:learned]), 1e-12)
        spec = replace(spec, block_scales=[1.0, scale])
    features = item_features(state, spec, encoded)
    extra = item_features(state, spec, encode_items(spec, attrs[n_items:]))
    cold = item_features(state, spec, encode_items(spec, [{}]))[0]
    counts = np.bincount(users[positive], minlength=n_users)
    own = trained_user_weights(
        result.user_vectors, result.user_bias, spec, features, (users, items, counts)
    )
    seen_users = counts > 0
    prior = own[seen_users].mean(axis=0)
    own[~seen_users] = prior
    scores = np.einsum("ij,ij->i", features[items], own[users])
    residual_var = float(np.mean((scores - rewards) ** 2))
    free = np.r_[np.arange(k), [learned + 1]]
    layout = {"rating": [0, k], "exposure": [k, learned]} if learned > k else {"tower": [0, k]}
    published = dict(state)
    published["ids.weight"] = state["ids.weight"][:1].copy()
    return DeepFeatureModel(
        item_features=features,
        prior_mean=prior,
        own_weights=own,
        lam_eb=_empirical_bayes_lambda(residual_var, own[seen_users][:, free]),
        cold_item=cold,
        relevance_threshold=global_mean,
        layout={
            **layout,
            "item_bias": [learned, learned + 1],
            "constant": [learned + 1, learned + 2],
        },
        exposure_directions=exposure_directions(result.user_vectors, spec, features.shape[1]),
        implicit_counts=counts.astype(np.int64) if options.implicit else None,
        implicit_rmse=float(np.sqrt(residual_var)),
        catalog_features=extra,
        tower_weights=published,
        tower_spec=spec.to_json(),
        training={
            "device": result.device,
            "samples_per_s": result.samples_per_s,
            "seconds": result.seconds,
            "train_loss": result.train_loss,
        },
    )


EXPOSURE_WEIGHT = 0.3
"""beta: the exposure logit's weight in the users' trained weights (module doc). On the
ml-100k cold-start bench (BENCHMARKS.md) 0.3 doubled the warm NDCG@10 with the RMSE within
1 % of ALS's; 0.5 and 1.0 ranked no better and cost 3-5 % RMSE."""


def trained_user_weights(
    vectors: NDArray[np.float64],
    bias: NDArray[np.float64],
    spec: TowerSpec,
    features: NDArray[np.float64],
    rated: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]],
) -> NDArray[np.float64]:
    """Each user's trained weights [p_u, beta q_u / s, 1, b_u - beta c_u]: the rating score
    plus beta times the exposure logit, centred on the user's rated items (c_u)."""
    n_users, k = len(vectors), spec.out_dim
    learned = spec.blocks * k
    exposure = np.zeros((n_users, learned - k))
    shift = np.zeros(n_users)
    if learned > k and EXPOSURE_WEIGHT > 0:
        exposure = EXPOSURE_WEIGHT * vectors[:, k:learned] / spec.block_scales[1]
        users, items, counts = rated
        logits = np.einsum("ij,ij->i", features[items, k:learned], exposure[users])
        shift = np.bincount(users, weights=logits, minlength=n_users) / np.maximum(counts, 1)
    own = np.hstack([vectors[:, :k], exposure, np.ones((n_users, 1)), (bias - shift)[:, None]])
    return own.astype(np.float32).astype(np.float64)


def exposure_directions(
    vectors: NDArray[np.float64], spec: TowerSpec, d: int
) -> NDArray[np.float64] | None:
    """d_u with x_i . d_u = the exposure logit y_i . q_u (batch.exposure_term); None when the
    tower has no exposure block (implicit feedback)."""
    if spec.blocks < 2:
        return None
    k = spec.out_dim
    directions = np.zeros((len(vectors), d))
    directions[:, k : 2 * k] = vectors[:, k : 2 * k] / spec.block_scales[1]
    return directions


def _remove_local(path: str) -> None:
    """Delete a local rows folder (cluster paths are left to the checkpoint cleanup)."""
    if "://" not in path:
        shutil.rmtree(Path(path).parent, ignore_errors=True)
