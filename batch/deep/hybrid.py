"""The hybrid deep model: ALS's collaborative features for known items, a distilled content
tower for every other item (`deep_warm_factors = "als"`, the default for explicit ratings).

The same job fits ALS exactly as `--kind mf` does (batch.train_als.fit_features): items with
training events get its features `[v_i, s y_i, mu + b_i, 1]` (their "id embedding" is the ALS
row, trained with ALS's objective and regularisation), and the user side, the empirical-Bayes
lambda, the exposure directions of the exposure term and the head choice are ALS's. The item
tower then learns, from the attributes alone (the unseen id row), to reproduce those features
in the users' score metric (batch.deep.distill), so that an item without events - in the
catalog, added by `PUT /items`, or the unknown item - lands in the same space. The unseen
row's output o is then calibrated to `centre + alpha (o - mean_c)` (tower.json
`unseen_calibration`): the known items' mean, and a spread alpha chosen so that items the
tower did not fit (out of fold), taken as new, get the share of the users' top-10 lists that
their own ALS features get (batch.deep.calibration).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from numpy.typing import NDArray
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf

from batch.datasets.reader import known_item_types
from batch.deep.calibration import share_matched_spread
from batch.deep.distill import DistillJob, distill_tower, metric_root
from batch.deep.inputs import attribute_rows, build_spec, keep_shared_words
from batch.deep.model import DeepFeatureModel
from batch.deep.train_torch import item_features
from batch.evaluate import training_counts
from batch.options import TrainOptions
from batch.prepare import ITEM, USER
from batch.snapshot_builder import catalog_ids
from batch.splits import TEST
from batch.train_als import fit_features
from feature_store.tower.encode import encode_items
from feature_store.tower.network import feature_rows
from feature_store.tower.spec import TowerSpec


def fit_hybrid_features(
    frame: DataFrame,
    shape: tuple[int, int],
    options: TrainOptions,
    *,
    item_ids: Sequence[str],
    attributes: pa.Table | None,
) -> DeepFeatureModel:
    """ALS features for `frame`'s items with training events, the distilled tower for the rest
    (module doc); `shape` = (users, items)."""
    als = fit_features(frame, shape, options)
    n_items, rank = shape[1], options.rank
    counts = training_counts(frame, n_items)
    seen = counts > 0
    mean = als.relevance_threshold  # the baseline's global mean mu
    # Block scales 1: the targets carry ALS's exposure scale s already.
    spec, attrs, seen_rows = tower_inputs(
        options, item_ids, attributes, seen, out_dim=rank, global_mean=mean, blocks=2
    )
    width = 2 * rank + 1  # the tower's raw output [z, y, b]
    targets = als.item_features[seen, :width].copy()
    targets[:, -1] -= mean
    users = als.own_weights + (
        als.exposure_directions if als.exposure_directions is not None else 0.0
    )
    job = DistillJob(
        spec=spec,
        items=encode_items(spec, seen_rows),
        targets=targets,
        root=metric_root(users[:, :width]),
        item_weights=np.sqrt(counts[seen]),
        max_epochs=options.deep_distill_epochs,
        lr=options.deep_lr,
        weight_decay=options.deep_weight_decay,
        device=options.device,
        seed=options.seed,
    )
    result = distill_tower(job)
    spec, state = result.spec, result.tower_state  # the averaged towers as one (wider) tower
    spread: dict[str, float] = {}
    if options.deep_calibrate_unseen and result.folds:
        # o -> centre + alpha (o - mean_c): the known items' mean, a spread chosen with each
        # fold's items as pseudo-new ones; one positive scale keeps new items' order for every
        # user and only sets how they compete with the known items (module doc).
        centre, own_mean = targets.mean(axis=0), result.out_of_fold.mean(axis=0)
        raw = torch.from_numpy(centre + result.out_of_fold - own_mean)
        content = feature_rows(raw, spec).numpy()  # spec: block scales 1, no transform yet
        alpha, known_share, content_share = share_matched_spread(
            als.item_features[seen], result.folds, content, users, _rated(frame, seen)
        )
        matrix, shift = alpha * np.eye(width), centre - alpha * own_mean
        spec = replace(spec, unseen_calibration=[*matrix.tolist(), shift.tolist()])
        spread = {
            "spread": alpha, "new_share_known": known_share, "new_share_content": content_share
        }  # fmt: skip
    features = als.item_features.copy()
    if not seen.all():  # items of this frame without training events: from their content
        features[~seen] = item_features(state, spec, encode_items(spec, attrs[:n_items]))[~seen]
    return DeepFeatureModel(
        **{name: getattr(als, name) for name in _ALS_FIELDS},
        item_features=features,
        cold_item=item_features(state, spec, encode_items(spec, [{}]))[0],
        catalog_features=item_features(state, spec, encode_items(spec, attrs[n_items:])),
        tower_weights=state,
        tower_spec=spec.to_json(),
        training={
            "device": result.device,
            "samples_per_s": result.samples_per_s,
            "seconds": result.seconds,
            "train_loss": result.out_of_fold_loss,
            "warm_factors": "als",
            "distill_epochs": float(result.epochs),
            **spread,
        },
    )


def tower_inputs(
    options: TrainOptions,
    item_ids: Sequence[str],
    attributes: pa.Table | None,
    seen: NDArray[np.bool_],
    *,
    out_dim: int,
    global_mean: float,
    blocks: int,
) -> tuple[TowerSpec, list[dict[str, Any]], list[dict[str, Any]]]:
    """The item tower's spec under `options` (`blocks` learned blocks, scales 1; title words
    of fewer than `deep_min_word_items` `seen` items not read), every catalog item's attribute
    row (the frame's items first, as `seen` has them), and the `seen` items' rows: what the
    hybrid's distillation and the joint towers both start from."""
    attributes = known_item_types(attributes) if attributes is not None else None
    rows = attribute_rows(catalog_ids(list(item_ids), attributes), attributes)
    spec = build_spec(
        attributes,
        embed_dim=options.deep_embed,
        hidden=options.deep_hidden,
        out_dim=out_dim,
        text_buckets=options.deep_text_buckets,
        global_mean=global_mean,
        block_scales=[1.0] * blocks,
    )
    seen_rows = [row for row, known in zip(rows[: len(seen)], seen, strict=True) if known]
    return keep_shared_words(spec, seen_rows, options.deep_min_word_items), rows, seen_rows


def _rated(
    frame: DataFrame, seen: NDArray[np.bool_]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The training (user, item) pairs of `frame`, items as rows of the `seen` items."""
    table = frame.filter(~sf.col(TEST)).select(USER, ITEM).toArrow()
    rows = np.cumsum(seen) - 1
    users = table.column(USER).to_numpy().astype(np.int64)
    return users, rows[table.column(ITEM).to_numpy()].astype(np.int64)


_ALS_FIELDS = (
    "prior_mean",
    "own_weights",
    "lam_eb",
    "relevance_threshold",
    "layout",
    "implicit_counts",
    "implicit_rmse",
    "exposure_prior",
    "exposure_directions",
)
