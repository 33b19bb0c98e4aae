"""The validation gate: relative tolerance, error vs score metrics, coverage not gated."""

from __future__ import annotations

import pytest

from batch.errors import GateRejectedError
from batch.gate import check_gate, comparable, compare_metrics

CURRENT = {"holdout_rmse": 0.90, "holdout_ndcg@10": 0.10, "holdout_coverage@10": 0.50}


def test_within_tolerance_passes() -> None:
    new = {"holdout_rmse": 0.91, "holdout_ndcg@10": 0.099, "holdout_coverage@10": 0.10}
    found = compare_metrics(new, CURRENT, tolerance=0.02)
    assert [c.name for c in found] == ["holdout_ndcg@10", "holdout_rmse"]  # coverage not gated
    assert not any(c.worse for c in found)
    check_gate(found, 0.02, current=3, published=4)


def test_regression_beyond_tolerance_is_rejected_with_409() -> None:
    new = {"holdout_rmse": 0.95, "holdout_ndcg@10": 0.05}
    found = compare_metrics(new, CURRENT, tolerance=0.02)
    assert all(c.worse for c in found)
    with pytest.raises(GateRejectedError) as raised:
        check_gate(found, 0.02, current=3, published=4)
    assert raised.value.status == 409
    assert "holdout_rmse 0.9500 vs 0.9000 (+5.6%)" in raised.value.message
    assert "holdout_ndcg@10 0.0500 vs 0.1000 (-50.0%)" in raised.value.message
    assert "velox models promote 4" in raised.value.message


def test_improvements_always_pass() -> None:
    new = {"holdout_rmse": 0.5, "holdout_ndcg@10": 0.9}
    assert not any(c.worse for c in compare_metrics(new, CURRENT, tolerance=0.0))


def test_only_same_dataset_and_protocol_is_comparable() -> None:
    base = {"dataset": "movielens-100k", "evaluation": {"top_k": 10}}
    assert comparable(base, dict(base))
    assert not comparable(base, {**base, "dataset": "synthetic-1000"})
    assert not comparable(base, {**base, "evaluation": {"top_k": 20}})
