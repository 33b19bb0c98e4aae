"""The gate against the most-popular baseline of the same run."""

from __future__ import annotations

import pytest

from batch.errors import GateRejectedError
from batch.gate import beats_popularity, check_popularity, compare_metrics

METRICS = {
    "global_time_ndcg@10": 0.12, "global_time_most_popular_ndcg@10": 0.14,
    "holdout_ndcg@10": 0.20, "holdout_most_popular_ndcg@10": 0.10,
}  # fmt: skip
INTERVALS = {"ndcg@10": [0.10, 0.14], "most_popular_ndcg@10": [0.12, 0.16]}


def test_a_model_that_ranks_below_popularity_is_refused_with_both_values() -> None:
    found = beats_popularity(METRICS, "global_time")
    assert [(c.name, c.worse) for c in found] == [("global_time_ndcg@10 vs most popular", True)]
    with pytest.raises(GateRejectedError) as raised:
        check_popularity(found, INTERVALS, "global_time", published=7)
    message = raised.value.message
    assert "does not rank better than recommending the most popular items" in message
    assert "0.1200 vs 0.1400" in message and "[0.1000, 0.1400] vs [0.1200, 0.1600]" in message
    assert "velox models promote 7" in message


def test_a_model_above_popularity_passes_and_ties_do_not() -> None:
    check_popularity(beats_popularity(METRICS, "holdout"), {}, "holdout", published=1)
    tied = {"holdout_ndcg@10": 0.1, "holdout_most_popular_ndcg@10": 0.1}
    assert beats_popularity(tied, "holdout")[0].worse


def test_the_baseline_is_never_compared_across_versions() -> None:
    current = {"holdout_most_popular_ndcg@10": 0.5, "holdout_ndcg@10": 0.2}
    new = {"holdout_most_popular_ndcg@10": 0.1, "holdout_ndcg@10": 0.2}
    assert [c.name for c in compare_metrics(new, current, 0.02)] == ["holdout_ndcg@10"]
