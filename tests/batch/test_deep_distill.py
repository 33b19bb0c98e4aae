"""The hybrid model's content tower: the score metric, and distillation onto planted targets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from batch.deep.averaged import averaged_tower
from batch.deep.calibration import share_matched_spread, top_share
from batch.deep.distill import FOLDS, DistillJob, distill_tower, metric_root
from batch.deep.inputs import attribute_rows, build_spec
from feature_store.tower.encode import encode_items
from feature_store.tower.network import ItemTower, tensors

GENRES = ("action", "comedy", "drama", "horror")


def test_the_metric_root_gives_the_mean_squared_score_error() -> None:
    rng = np.random.default_rng(5)
    users = rng.normal(size=(50, 4))
    errors = rng.normal(size=(7, 4))  # output minus target, per item
    root = metric_root(users, ridge=0.0)
    by_root = ((errors @ root) ** 2).sum(axis=1)
    by_users = ((errors @ users.T) ** 2).mean(axis=1)
    np.testing.assert_allclose(by_root, by_users, rtol=1e-9)


def _planted_items(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    genres = [
        sorted(set(rng.choice(GENRES, size=int(rng.integers(1, 3))).tolist())) for _ in range(n)
    ]
    years = rng.integers(1950, 2020, size=n)
    return pa.table({
        "item_id": [f"i{k}" for k in range(n)],
        "genres": pa.array(genres, pa.list_(pa.string())),
        "year": pa.array(years, pa.int64()),
    })  # fmt: skip


def test_the_tower_learns_targets_that_are_a_function_of_content() -> None:
    """Targets planted as a linear map of genre indicators and the standardized year: the
    distilled tower reproduces them on the held-out items, far better than their mean."""
    torch.manual_seed(0)
    table = _planted_items(300, seed=2)
    spec = build_spec(
        table, embed_dim=8, hidden=32, out_dim=2, text_buckets=8, global_mean=3.0,
        block_scales=[1.0, 1.0],
    )  # fmt: skip
    rows = attribute_rows(table.column("item_id").to_pylist(), table)
    has = np.array([[g in row["genres"] for g in GENRES] for row in rows], np.float64)
    year = np.array([row["year"] for row in rows], np.float64)
    content = np.hstack([has, ((year - year.mean()) / year.std())[:, None]])
    targets = content @ np.random.default_rng(4).normal(size=(5, 5))  # raw output width 2k + 1
    users = np.random.default_rng(6).normal(size=(40, 5))
    job = DistillJob(
        spec=spec,
        items=encode_items(spec, rows),
        targets=targets,
        root=metric_root(users),
        max_epochs=300,
        lr=1e-2,
        device="cpu",
        seed=1,
        towers=1,
    )  # fmt: skip  (one tower: the averaging has its own test, and CI time is short)
    result = distill_tower(job)
    # Every item is in one fold, and its out-of-fold output (from a tower that never saw it)
    # is close to its target in the users' score metric.
    assert len(result.folds) == FOLDS
    assert sorted(np.concatenate(result.folds).tolist()) == list(range(300))
    spread = targets - targets.mean(axis=0)
    error = result.out_of_fold - targets
    assert ((error @ users.T) ** 2).mean() < 0.05 * ((spread @ users.T) ** 2).mean()
    # The published tower (one id row: every item unseen) is trained on every item.
    tower = ItemTower(result.spec, id_rows=1)
    tower.load_state_dict({k: torch.from_numpy(v) for k, v in result.tower_state.items()})
    with torch.inference_mode():
        final = tower.eval()(*tensors(encode_items(spec, rows))).double().numpy()
    assert (((final - targets) @ users.T) ** 2).mean() < 0.05 * ((spread @ users.T) ** 2).mean()


def test_averaged_towers_are_one_tower_giving_their_mean_output() -> None:
    """Three towers (genres, year and title words, two id rows) as one wider tower: its output
    is the mean of theirs on every item, seen or not, and its spec says the wider sizes."""
    table = _planted_items(40, seed=3).append_column(
        "title", pa.array([f"film {k % 7} part {k % 3}" for k in range(40)])
    )
    spec = build_spec(
        table, embed_dim=4, hidden=6, out_dim=2, text_buckets=16, global_mean=3.0,
        block_scales=[1.0, 1.0],
    )  # fmt: skip
    encoded = encode_items(spec, attribute_rows(table.column("item_id").to_pylist(), table))
    inputs = tensors(encoded)
    inputs[3] = torch.arange(40) % 2  # half the items on id row 1, half unseen (row 0)
    towers = []
    for seed in range(3):
        torch.manual_seed(seed)
        towers.append(ItemTower(spec, id_rows=2).eval())
    states = [{k: v.numpy() for k, v in tower.state_dict().items()} for tower in towers]
    wide_spec, state = averaged_tower(spec, states)
    assert (wide_spec.embed_dim, wide_spec.hidden) == (12, 18)
    wide = ItemTower(wide_spec, id_rows=2)
    wide.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    with torch.inference_mode():
        mean = torch.stack([tower(*inputs) for tower in towers]).mean(dim=0)
        np.testing.assert_allclose(wide.eval()(*inputs).numpy(), mean.numpy(), atol=1e-6)


def test_the_spread_gives_new_items_the_share_their_own_features_take() -> None:
    """One feature, every user weight 1: items score 0..99 and the held items 90..99 fill
    every top 10 with their own features. Content features equal to theirs need the full
    spread (alpha 1); twice as spread-out, alpha 0.5 (the smallest alpha that keeps them on
    top). A rated pair of a held item is not left out (a new item is in nobody's history)."""
    known = np.arange(100, dtype=np.float64)[:, None]
    users = np.ones((5, 1))
    held = np.arange(90, 100)
    rated = (np.array([0, 1]), np.array([95, 3]))
    alpha, target, reached = share_matched_spread(known, [held], known, users, rated)
    assert (alpha, target, reached) == (1.0, 1.0, 1.0)
    doubled = known.mean() + 2.0 * (known - known.mean())
    alpha, _, reached = share_matched_spread(known, [held], doubled, users, rated)
    assert alpha == pytest.approx(0.5) and reached == 1.0
    # Two folds: the top 10 (all slots with their own features) and the next 10 (none, but
    # item 89 for user 0, whose rated item 95 is left out then: 1/50): on average 0.51;
    # content features at the mean item take none of them, whatever alpha (the first wins).
    alpha, target, reached = share_matched_spread(
        known, [held, held - 10], np.full_like(known, known.mean()), users, rated
    )
    assert (alpha, target, reached) == (0.0, 0.51, 0.0)
    assert top_share(users @ known.T, np.isin(np.arange(100), held), rated) == 0.98
