"""The retrieval cascade of a large catalog: ANN candidates → exact re-rank → the policy.

For a snapshot with an ANN index (feature_store.ann_index), `/predict` does not score every
item. `retrieve` proposes candidate rows; the service then scores them exactly with the
user's current posterior and lets the policy choose among them, so every propensity it logs
is relative to the candidate set (the decision log records the set's source and size).

What the candidates are:
- Queries: the posterior mean, and when the request explores, one draw of w from the
  posterior (m + noise_std · S z), whose neighbourhood is where Thompson sampling and LinUCB
  look beyond the greedy answer; plus `random_rows` eligible rows drawn uniformly, so ε-greedy
  and every other policy can still show any item of the catalog.
- Cheap path: `nprobe_cheap` inverted lists, `candidates_cheap` rows per query.
- The confidence gate (an "I don't know" cascade): after the cheap search, the k-th best exact
  score among the candidates is turned into its distance in the index's reduced space and
  compared with the nearest list the search left out. If that list's centroid is farther by
  more than `gate_margin` times the largest item norm, the lists left out are unlikely to
  hold a better item and the cheap answer stands; otherwise the costly path searches again
  with `nprobe_costly` lists and `candidates_costly` rows.
- Filters: a `where` (with `exclude_seen`) that keeps under `scan_share` of the catalog is
  answered by an exact scan of the matching rows (Vespa switches at 2 % too); otherwise the
  index is searched and widened (4x the lists and rows, then the exact scan) until k
  eligible rows are found, so an answer never has fewer than k items when k are eligible.
- Items added online (`PUT /items`) after the index was built sit past its last row: they
  are candidates of every request (there are few until the next training run indexes them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from feature_store.ann_index import AnnIndex
from velox.catalog import ItemMatrix
from velox.posterior import UserPosterior

WIDEN = 4


@dataclass(frozen=True)
class CascadeConfig:
    """The cascade's knobs (service settings); the index's own sizes are in its manifest."""

    gate_margin: float = 0.03
    scan_share: float = 0.02
    random_rows: int = 16
    gated: bool = True


@dataclass(frozen=True)
class Candidates:
    """Eligible candidate rows (sorted, unique) and how they were found."""

    rows: NDArray[np.intp]
    source: str
    """`ann-cheap`, `ann-costly`, `ann-widened` or `scan` (exact scan of the eligible rows)."""
    probed_rows: int
    """Rows the search touched (index lists scanned + rows re-ranked): its compute."""


@dataclass(frozen=True)
class IndexGeometry:
    """What the gate needs from the index, computed once per snapshot."""

    centroids: NDArray[np.float32]
    """The lists' centroids without the reduction's extra coordinate (a query has 0 there)."""
    centroid_norms_sq: NDArray[np.float32]
    """Their squared norms in the reduced space, extra coordinate included."""
    max_norm_sq: float

    @classmethod
    def of(cls, index: AnnIndex) -> IndexGeometry:
        """The index's list centroids and their squared norms, once per snapshot."""
        reduced = index.centroids()
        norms_sq = np.einsum("ij,ij->i", reduced, reduced)
        features = np.ascontiguousarray(reduced[:, :-1])
        return cls(features, norms_sq, index.params.max_norm_sq)


def retrieve(
    index: AnnIndex,
    geometry: IndexGeometry,
    items: ItemMatrix,
    posterior: UserPosterior,
    k: int,
    eligible: NDArray[np.bool_] | None,
    config: CascadeConfig,
    rng: np.random.Generator | None,
) -> Candidates:
    """The candidate rows of one request (module doc); `rng` None: no exploration queries."""
    if eligible is not None and np.count_nonzero(eligible) < config.scan_share * items.n:
        rows = np.flatnonzero(eligible)
        return Candidates(rows, "scan", int(rows.size))
    mean = posterior.mean()
    queries = [mean]
    if rng is not None:
        draw = mean + posterior.noise_std * (
            posterior.cov_factor() @ rng.standard_normal(mean.size)
        )
        queries.append(draw)
    query = np.asarray(queries, dtype=np.float32)
    params = index.params
    nprobe, size = params.nprobe_cheap, params.candidates_cheap
    rows = _search(index, query, size, nprobe, eligible)
    source, probed = "ann-cheap", _probed(index, nprobe, size, len(queries))
    if config.gated and not _confident(geometry, items, mean, rows, k, nprobe, config):
        nprobe, size = params.nprobe_costly, params.candidates_costly
        rows = np.union1d(rows, _search(index, query, size, nprobe, eligible))
        source, probed = "ann-costly", probed + _probed(index, nprobe, size, len(queries))
    elif not config.gated:
        nprobe, size = params.nprobe_costly, params.candidates_costly
        rows = _search(index, query, size, nprobe, eligible)
        source, probed = "ann-costly", _probed(index, nprobe, size, len(queries))
    while rows.size < k:
        nprobe, size = nprobe * WIDEN, size * WIDEN
        if nprobe >= params.nlist:
            everything = np.flatnonzero(eligible) if eligible is not None else np.arange(items.n)
            return Candidates(everything, "scan", probed + items.n)
        rows = np.union1d(rows, _search(index, query, size, nprobe, eligible))
        source, probed = "ann-widened", probed + _probed(index, nprobe, size, len(queries))
    if rng is not None and config.random_rows > 0:
        rows = np.union1d(rows, _random_eligible(items.n, eligible, config.random_rows, rng))
    if items.n > index.n:  # items added online since the index was built: always candidates
        added = np.arange(index.n, items.n)
        rows = np.union1d(rows, added if eligible is None else added[eligible[added]])
    return Candidates(rows, source, probed)


def _search(
    index: AnnIndex,
    query: NDArray[np.float32],
    size: int,
    nprobe: int,
    eligible: NDArray[np.bool_] | None,
) -> NDArray[np.intp]:
    found = index.search(query, size, nprobe).ravel()
    rows = np.unique(found[found >= 0])
    return rows if eligible is None else rows[eligible[rows]]


def _probed(index: AnnIndex, nprobe: int, size: int, n_queries: int) -> int:
    per_list = index.n / index.params.nlist
    return int(n_queries * (nprobe * per_list + size))


def _confident(
    geometry: IndexGeometry,
    items: ItemMatrix,
    mean: NDArray[np.float64],
    rows: NDArray[np.intp],
    k: int,
    nprobe: int,
    config: CascadeConfig,
) -> bool:
    """Whether every unprobed list lies clearly farther than the k-th candidate (module doc).

    In the reduced space (feature_store.ann_index) the k-th best exact score s_k is the
    distance D_k = sqrt(|m|² + M² - 2 s_k); the nearest unprobed centroid must be more than
    `gate_margin` · M beyond it.
    """
    if rows.size < k:
        return False
    if nprobe >= geometry.centroids.shape[0]:
        return True  # every list was probed: nothing was left out
    query = mean.astype(np.float32)
    scores = items.features[rows] @ query
    kth = float(np.partition(scores, scores.size - k)[scores.size - k])
    norm_sq = float(query @ query)
    kth_distance = np.sqrt(max(norm_sq + geometry.max_norm_sq - 2.0 * kth, 0.0))
    centroid_sq = geometry.centroid_norms_sq - 2.0 * (geometry.centroids @ query)
    nearest_unprobed = float(np.partition(centroid_sq, nprobe)[nprobe]) + norm_sq
    gap = np.sqrt(max(nearest_unprobed, 0.0)) - kth_distance
    return bool(gap > config.gate_margin * np.sqrt(geometry.max_norm_sq))


def _random_eligible(
    n: int, eligible: NDArray[np.bool_] | None, count: int, rng: np.random.Generator
) -> NDArray[np.intp]:
    drawn = rng.integers(0, n, size=count * 2 if eligible is not None else count)
    if eligible is not None:
        drawn = drawn[eligible[drawn]][:count]
    return drawn.astype(np.intp)


def sub_catalog(items: ItemMatrix, rows: NDArray[np.intp]) -> ItemMatrix:
    """The candidates as a catalog of their own (rows copied, norms reused)."""
    return ItemMatrix(features=items.features[rows], norms=items.norms[rows])
