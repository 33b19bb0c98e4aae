"""The gate against the most-popular baseline of the same run."""

from __future__ import annotations

import pytest

from batch.errors import GateRejectedError
from batch.gate import beats_popularity, check_popularity, compare_metrics, popularity_warnings

METRICS = {"global_time_ndcg@10": 0.09, "global_time_most_popular_ndcg@10": 0.14}
APART = {"ndcg@10": [0.07, 0.11], "most_popular_ndcg@10": [0.12, 0.16]}
OVERLAPPING = {"ndcg@10": [0.07, 0.13], "most_popular_ndcg@10": [0.12, 0.16]}
SERVED_RANKS = {"global_time_ndcg@10": 0.15, "global_time_most_popular_ndcg@10": 0.13}
SERVED_DOES_NOT = {"global_time_ndcg@10": 0.10, "global_time_most_popular_ndcg@10": 0.13}


def test_a_model_clearly_below_popularity_does_not_replace_one_that_ranks() -> None:
    found = beats_popularity(METRICS, APART, "global_time", SERVED_RANKS)
    assert [(c.name, c.worse) for c in found] == [("global_time_ndcg@10 vs most popular", True)]
    with pytest.raises(GateRejectedError) as raised:
        check_popularity(found, APART, "global_time", published=7)
    message = raised.value.message
    assert "ranks worse than recommending the most popular items" in message
    assert "0.0900 vs 0.1400" in message and "[0.0700, 0.1100] vs [0.1200, 0.1600]" in message
    assert "velox models promote 7" in message


@pytest.mark.parametrize(
    ("intervals", "served"),
    [(OVERLAPPING, SERVED_RANKS), (APART, {}), (APART, SERVED_DOES_NOT)],
    ids=["within the noise", "first version", "served version does not rank either"],
)
def test_otherwise_it_passes_with_a_warning(
    intervals: dict[str, list[float]], served: dict[str, float]
) -> None:
    found = beats_popularity(METRICS, intervals, "global_time", served)
    assert not found[0].worse
    check_popularity(found, intervals, "global_time", published=1)
    (warning,) = popularity_warnings(found)
    assert "does not rank better than recommending the most popular items" in warning


def test_a_model_above_popularity_passes_silently() -> None:
    above = {"holdout_ndcg@10": 0.2, "holdout_most_popular_ndcg@10": 0.1}
    assert popularity_warnings(beats_popularity(above, {}, "holdout", above)) == []


def test_the_baseline_is_never_compared_across_versions() -> None:
    current = {"holdout_most_popular_ndcg@10": 0.5, "holdout_ndcg@10": 0.2}
    new = {"holdout_most_popular_ndcg@10": 0.1, "holdout_ndcg@10": 0.2}
    assert [c.name for c in compare_metrics(new, current, 0.02)] == ["holdout_ndcg@10"]
