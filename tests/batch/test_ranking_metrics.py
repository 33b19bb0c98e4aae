"""Ranking metrics against hand-computed values and the perfect-ranking closed form."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.evaluate import ranking_metrics


def _rows(events: list[tuple[int, int, float, bool]]) -> pa.Table:
    u, i, r, t = zip(*events, strict=True)
    return pa.table({"u": list(u), "i": list(i), "r": list(r), "test": list(t)})


def test_hand_computed_example() -> None:
    features = np.eye(5)  # score(u, i) = weights[u, i]
    weights = np.array(
        [
            [10.0, 1.0, 9.0, 8.0, 0.0],  # item 0 was trained on: never shown back
            [1.0, 2.0, 5.0, 3.0, 9.0],
            [0.0, 0.0, 0.0, 0.0, 1.0],
        ]
    )
    rows = _rows(
        [
            (0, 0, 5.0, False),
            (0, 1, 5.0, True),  # relevant, ranked 3rd
            (0, 3, 2.0, True),  # held out but not relevant (2 <= 3)
            (1, 4, 5.0, False),
            (1, 2, 4.0, True),  # relevant, ranked 1st
            (2, 1, 1.0, True),  # user 2 has nothing relevant: skipped
        ]
    )
    at3 = ranking_metrics(features, weights, rows, k=3, relevant_above=3.0)
    assert at3 == pytest.approx(
        {"recall@3": 1.0, "ndcg@3": (1 / math.log2(4) + 1.0) / 2, "coverage@3": 3 / 5, "users": 2}
    )
    at2 = ranking_metrics(features, weights, rows, k=2, relevant_above=3.0)
    assert at2["recall@2"] == 0.5 and at2["ndcg@2"] == 0.5
    assert at2["coverage@2"] == pytest.approx(2 / 5)  # both users get {2, 3}


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 10_000),
    st.integers(1, 8),
    st.integers(1, 12),
)
def test_perfect_scores_give_ideal_metrics(seed: int, k: int, n_relevant: int) -> None:
    rng = np.random.default_rng(seed)
    n_items = 30
    relevant = rng.choice(n_items, n_relevant, replace=False)
    weights = rng.uniform(0, 1, (1, n_items))
    weights[0, relevant] += 10.0  # every relevant item outscores every other
    rows = _rows([(0, int(i), 5.0, True) for i in relevant])
    found = ranking_metrics(np.eye(n_items), weights, rows, k=k, relevant_above=0.0)
    assert found[f"recall@{k}"] == pytest.approx(min(k, n_relevant) / n_relevant)
    assert found[f"ndcg@{k}"] == pytest.approx(1.0)


def test_a_catalog_smaller_than_k_keeps_the_metric_names() -> None:
    rows = _rows([(0, 2, 5.0, True)])
    found = ranking_metrics(np.eye(3), np.array([[0.0, 1.0, 2.0]]), rows, k=10, relevant_above=0)
    assert found == {"recall@10": 1.0, "ndcg@10": 1.0, "coverage@10": 1.0, "users": 1.0}
