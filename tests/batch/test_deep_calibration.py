"""The item tower's cold-start inputs: the unseen row's calibration (spread matching, where it
applies, its JSON) and the shared-words filter of text columns."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
import torch

from batch.deep.calibration import calibrate_unseen, matched_covariance
from batch.deep.features import exposure_directions
from batch.deep.inputs import build_spec, keep_shared_words
from feature_store.errors import SnapshotCorruptError
from feature_store.tower.encode import EncodedItems, encode_items, word_bucket
from feature_store.tower.network import ItemTower, tensors
from feature_store.tower.spec import TowerSpec

SPEC = build_spec(
    None, embed_dim=4, hidden=8, out_dim=2, text_buckets=8, global_mean=3.0,
    block_scales=[1.0, 1.0],
)  # fmt: skip


def test_matched_covariance_gives_the_id_paths_mean_and_covariance() -> None:
    rng = np.random.default_rng(3)
    mixing = rng.normal(size=(3, 3))
    with_ids = rng.normal(size=(400, 3)) @ mixing + [1.0, -2.0, 0.5]
    content = 0.25 * with_ids @ rng.normal(size=(3, 3)) + rng.normal(0.0, 0.1, size=(400, 3))
    matrix, shift = matched_covariance(with_ids, content, ridge=0.0)
    moved = content @ matrix.T + shift
    np.testing.assert_allclose(moved.mean(axis=0), with_ids.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(np.cov(moved.T), np.cov(with_ids.T), rtol=1e-6, atol=1e-9)
    # The ridge shrinks the map: every direction's spread ends at most the id path's.
    ridged = content @ matched_covariance(with_ids, content, ridge=0.5)[0].T
    assert np.all(np.linalg.eigvalsh(np.cov(with_ids.T) - np.cov(ridged.T)) > -1e-9)


def _items(ids: list[int]) -> EncodedItems:
    n = len(ids)
    return EncodedItems(
        tokens=np.zeros((n, 1), np.int64), words=np.zeros((n, 1), np.int64),
        numbers=np.zeros((n, 0), np.float32), ids=np.array(ids, np.int64),
    )  # fmt: skip


def test_the_calibration_moves_only_items_on_the_unseen_row() -> None:
    torch.manual_seed(0)
    plain = ItemTower(SPEC, id_rows=5).eval()
    state = {k: v.detach().numpy() for k, v in plain.state_dict().items()}
    spec = calibrate_unseen(state, SPEC, _items([1, 0, 2, 3, 4]), np.array([1, 0, 1, 1, 1], bool))
    assert spec.unseen_calibration is not None
    matrix, shift = np.array(spec.unseen_calibration[:-1]), np.array(spec.unseen_calibration[-1])
    calibrated = ItemTower(spec, id_rows=5).eval()
    calibrated.load_state_dict(plain.state_dict())  # the calibration is not in the weights
    assert set(calibrated.state_dict()) == set(plain.state_dict())
    items = _items([0, 3, 0, 1])
    with torch.no_grad():
        before = plain(*tensors(items)).double().numpy()
        after = calibrated(*tensors(items)).double().numpy()
    np.testing.assert_allclose(after[[1, 3]], before[[1, 3]])
    np.testing.assert_allclose(
        after[[0, 2]], before[[0, 2]] @ matrix.T + shift, rtol=1e-4, atol=1e-4
    )


def test_the_calibration_survives_json_and_a_wrong_width_is_refused() -> None:
    rows = np.arange(30.0).reshape(6, 5) / 7
    spec = replace(SPEC, unseen_calibration=rows.tolist())
    assert TowerSpec.from_json(spec.to_json()) == spec
    bad = replace(SPEC, unseen_calibration=rows[:5].tolist())
    with pytest.raises(SnapshotCorruptError, match="unseen_calibration"):
        TowerSpec.from_json(bad.to_json())


def test_only_words_shared_by_enough_items_are_read() -> None:
    table = pa.table({"item_id": ["a", "b", "c"], "title": ["Star Wars", "Star Trek", "Heat"]})
    spec = build_spec(table, embed_dim=4, hidden=4, out_dim=2, text_buckets=64, global_mean=0.0)
    assert spec.text == ["title"]
    rows = [{"title": t} for t in table.column("title").to_pylist()]
    kept = keep_shared_words(spec, rows, min_items=2)
    star = word_bucket("title", "star", 64)
    assert kept.text_kept == [star]
    encoded = encode_items(kept, [{"title": "Star Heat Wars"}, {"title": "Heat"}])
    assert encoded.words.tolist() == [[star], [0]]
    assert keep_shared_words(spec, rows, min_items=1) is spec
    assert TowerSpec.from_json(kept.to_json()) == kept


def test_the_exposure_directions_give_the_towers_exposure_logit() -> None:
    """x_i . d_u = y_i . q_u for features [z, s y, mean + b, 1] (batch.exposure_term's e_ui)."""
    k, rng = 2, np.random.default_rng(5)
    spec = replace(SPEC, block_scales=[1.0, 2.5])
    z, y, b = rng.normal(size=(4, k)), rng.normal(size=(4, k)), rng.normal(size=4)
    features = np.hstack([z, 2.5 * y, (3.0 + b)[:, None], np.ones((4, 1))])
    vectors = rng.normal(size=(3, 2 * k))
    directions = exposure_directions(vectors, spec, features.shape[1])
    assert directions is not None
    np.testing.assert_allclose(directions @ features.T, vectors[:, k:] @ y.T)
    assert exposure_directions(vectors[:, :k], replace(spec, block_scales=[1.0]), k + 2) is None
