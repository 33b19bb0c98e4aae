"""The gate against the most-popular baseline of the same run."""

from __future__ import annotations

import pytest

from batch.errors import GateRejectedError
from batch.gate import beats_popularity, check_popularity, compare_metrics, popularity_warnings

METRICS = {"global_time_ndcg@10": 0.09, "global_time_most_popular_ndcg@10": 0.14}
APART = {"ndcg@10": [0.07, 0.11], "most_popular_ndcg@10": [0.12, 0.16]}
OVERLAPPING = {"ndcg@10": [0.07, 0.13], "most_popular_ndcg@10": [0.12, 0.16]}


def test_a_model_clearly_below_popularity_is_refused_with_both_values() -> None:
    found = beats_popularity(METRICS, APART, "global_time")
    assert [(c.name, c.worse) for c in found] == [("global_time_ndcg@10 vs most popular", True)]
    with pytest.raises(GateRejectedError) as raised:
        check_popularity(found, APART, "global_time", published=7)
    message = raised.value.message
    assert "ranks worse than recommending the most popular items" in message
    assert "0.0900 vs 0.1400" in message and "[0.0700, 0.1100] vs [0.1200, 0.1600]" in message
    assert "velox models promote 7" in message


def test_below_popularity_within_the_noise_passes_with_a_warning() -> None:
    found = beats_popularity(METRICS, OVERLAPPING, "global_time")
    assert not found[0].worse
    check_popularity(found, OVERLAPPING, "global_time", published=1)
    (warning,) = popularity_warnings(found)
    assert "does not rank better than recommending the most popular items" in warning
    above = {"holdout_ndcg@10": 0.2, "holdout_most_popular_ndcg@10": 0.1}
    assert popularity_warnings(beats_popularity(above, {}, "holdout")) == []
    # Without intervals the point estimates decide.
    assert beats_popularity({**METRICS}, {}, "global_time")[0].worse


def test_the_baseline_is_never_compared_across_versions() -> None:
    current = {"holdout_most_popular_ndcg@10": 0.5, "holdout_ndcg@10": 0.2}
    new = {"holdout_most_popular_ndcg@10": 0.1, "holdout_ndcg@10": 0.2}
    assert [c.name for c in compare_metrics(new, current, 0.02)] == ["holdout_ndcg@10"]
