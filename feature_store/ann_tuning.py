"""How deep the cascade's costly path searches, measured at publish on the snapshot's users.

A catalog's geometry decides how many inverted lists hold a user's best items: item vectors
drawn around topics (the synthetic catalog) keep them in the nearest 128 of 1,024 lists, but
trained vectors, less clustered, spread them wider (bench/trained_catalog.py: recall@10 0.89
at 128 lists, 0.95 at 256, 0.98 at 512; BENCHMARKS.md). So the depth is not guessed: after
the index is built, the exact top 10 of a seeded sample of the snapshot's own users (their
published weights, the posterior means the service starts from) is compared with the costly
search at 128, 256, 512, … lists, and the shallowest depth that reaches `TARGET_RECALL` is
recorded in the manifest (`extra["ann_index"]`), with every depth's measured recall beside it
(`extra["ann_tuning"]`). The confidence gate then widens up to that depth, and only where a
request is unsure.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from feature_store.ann_index import AnnIndex, AnnParams

TARGET_RECALL = 0.97
SAMPLE_USERS = 256
FIRST_DEPTH = 128
K = 10


def exact_top(features: NDArray[np.float32], queries: NDArray[np.float32]) -> NDArray[np.intp]:
    """Each query's exact top K rows over the whole catalog (as a set: unordered)."""
    found = np.empty((queries.shape[0], K), dtype=np.intp)
    for start in range(0, queries.shape[0], 32):  # 32 score columns at a time: 128 MB at 10⁶
        scores = features @ queries[start : start + 32].T
        found[start : start + 32] = np.argpartition(-scores, K, axis=0)[:K].T
    return found


def _recall(
    index: AnnIndex,
    features: NDArray[np.float32],
    queries: NDArray[np.float32],
    truth: NDArray[np.intp],
    depth: int,
    candidates: int,
) -> float:
    found = index.search(queries, candidates, depth)
    hits = 0
    for query, proposed, exact in zip(queries, found, truth, strict=True):
        rows = proposed[proposed >= 0]
        best = rows[np.argpartition(-(features[rows] @ query), K)[:K]] if rows.size > K else rows
        hits += int(np.isin(best, exact).sum())
    return hits / (K * len(queries))


def tuned(
    index: AnnIndex, features: NDArray[np.float32], user_weights: NDArray[np.floating[Any]]
) -> tuple[AnnParams, dict[str, Any]]:
    """The index's parameters with the measured costly depth, and what was measured."""
    params = index.params
    if user_weights.shape[0] == 0 or features.shape[0] <= K:
        return params, {"sample_users": 0}
    rng = np.random.default_rng(params.seed)
    chosen = rng.choice(user_weights.shape[0], min(SAMPLE_USERS, user_weights.shape[0]), False)
    queries = np.ascontiguousarray(user_weights[np.sort(chosen)], dtype=np.float32)
    truth = exact_top(features, queries)
    measured: dict[str, float] = {}
    depth = min(FIRST_DEPTH, params.nlist)
    while True:
        candidates = max(params.candidates_costly, 4 * depth)
        measured[str(depth)] = round(_recall(index, features, queries, truth, depth, candidates), 4)
        if measured[str(depth)] >= TARGET_RECALL or depth >= params.nlist:
            break
        depth = min(2 * depth, params.nlist)
    tuning = {"sample_users": len(queries), "target_recall": TARGET_RECALL, "recall": measured}
    return replace(params, nprobe_costly=depth, candidates_costly=candidates), tuning
