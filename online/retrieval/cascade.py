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
- Cheap path: the `nprobe_cheap` lists nearest each query; their rows are read from the
  float32 features and scored exactly, and the best `candidates_cheap` per query are kept.
- The confidence gate (an "I don't know" cascade), staged: after each stage, the k-th best
  exact score among the posterior mean's candidates is turned into its distance in the
  index's reduced space and compared with the next list in the mean's ranking. If that list's
  centroid is farther by more than `gate_margin` times the largest item norm, the lists left
  are unlikely to hold a better item and the answer stands; otherwise the next stage searches
  the following lists only (doubling the lists searched, up to `nprobe_costly`; faiss scans
  just those lists' codes: `AnnIndex.search_lists`), so an unsure
  request pays for the lists it needs and no list is scanned twice. Without the gate, one
  search of `nprobe_costly` lists for `candidates_costly` rows (the costly path).
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

    gate_margin: float = 0.04
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
    """What the staged search and the gate need from the index, computed once per snapshot."""

    centroids: NDArray[np.float32]
    """The lists' centroids without the reduction's extra coordinate (a query has 0 there)."""
    centroid_norms_sq: NDArray[np.float32]
    """Their squared norms in the reduced space, extra coordinate included."""
    max_norm_sq: float
    list_offsets: NDArray[np.int64]
    list_rows: NDArray[np.int64]
    """Every list's rows: list j holds `list_rows[list_offsets[j]:list_offsets[j + 1]]`."""
    list_sizes: NDArray[np.int64]
    """Number of rows in each list."""

    @classmethod
    def of(cls, index: AnnIndex) -> IndexGeometry:
        """The index's list centroids, their squared norms and members, once per snapshot."""
        reduced = index.centroids()
        norms_sq = np.einsum("ij,ij->i", reduced, reduced)
        features = np.ascontiguousarray(reduced[:, :-1])
        offsets, rows = index.list_members()
        sizes = np.diff(offsets)
        return cls(features, norms_sq, index.params.max_norm_sq, offsets, rows, sizes)

    def members(self, lists: NDArray[np.int64]) -> NDArray[np.int64]:
        """The rows of the given lists, list after list."""
        starts, stops = self.list_offsets[lists], self.list_offsets[lists + 1]
        return np.concatenate([self.list_rows[a:b] for a, b in zip(starts, stops, strict=True)])

    def ranked_lists(
        self, queries: NDArray[np.float32], depth: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Each query's `depth` nearest lists, nearest first, and their squared distances."""
        norms_sq = np.einsum("ij,ij->i", queries, queries)
        distances = self.centroid_norms_sq - 2.0 * (queries @ self.centroids.T) + norms_sq[:, None]
        nearest = np.argpartition(distances, depth - 1, axis=1)[:, :depth]
        order = np.argsort(np.take_along_axis(distances, nearest, axis=1), axis=1)
        lists = np.take_along_axis(nearest, order, axis=1).astype(np.int64)
        return lists, np.take_along_axis(distances, lists, axis=1).astype(np.float32)


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
        queries.append(posterior.sample(rng))
    query = np.asarray(queries, dtype=np.float32)
    params = index.params
    depth = min(params.nprobe_costly, params.nlist)
    lists, distances = geometry.ranked_lists(query, depth)
    search = _StagedSearch(index, geometry, items, query, lists, distances, eligible)
    if not config.gated:
        end, source = depth, "ann-costly"
        search.costly(depth, params.candidates_costly)
    else:
        end, source = min(params.nprobe_cheap, depth), "ann-cheap"
        search.first_stage(end, params.candidates_cheap)
        while end < depth and not _confident(
            geometry, search.kth_mean_score(k), mean, distances[0, end], config
        ):
            stop = min(2 * end, depth)
            search.next_stage(end, stop, params.candidates_cheap)
            source, end = "ann-costly", stop
    rows, probed, nprobe, size = search.rows(), search.probed, end, params.candidates_costly
    while rows.size < k:
        nprobe, size = nprobe * WIDEN, size * WIDEN
        if nprobe >= params.nlist:
            everything = np.flatnonzero(eligible) if eligible is not None else np.arange(items.n)
            return Candidates(everything, "scan", probed + items.n)
        rows = np.union1d(rows, _search(index, query, size, nprobe, eligible))
        source, probed = "ann-widened", probed + _probed(index, nprobe, size, len(queries))
    extra = [rows]
    if rng is not None and config.random_rows > 0:
        extra.append(_random_eligible(items.n, eligible, config.random_rows, rng))
    if items.n > index.n:  # items added online since the index was built: always candidates
        added = np.arange(index.n, items.n)
        extra.append(added if eligible is None else added[eligible[added]])
    return Candidates(_distinct(np.concatenate(extra)) if len(extra) > 1 else rows, source, probed)


EXACT_STAGE_ROWS = 4096
"""A later stage whose lists hold at most this many rows reads and scores them exactly;
a larger one is a faiss scan of their 8-bit codes (cheaper per row, one call's fixed cost)."""


class _StagedSearch:
    """One request's search over its ranked lists, stage by stage, counting rows touched.

    The first stage reads the rows of every query's nearest lists and scores them exactly;
    the later ones search only the mean's next lists that no stage has read yet, exactly
    while they are small and through faiss beyond, so the mean's rows never repeat and
    their exact scores, kept as they come, give the gate its k-th best score.
    """

    def __init__(
        self,
        index: AnnIndex,
        geometry: IndexGeometry,
        items: ItemMatrix,
        query: NDArray[np.float32],
        lists: NDArray[np.int64],
        distances: NDArray[np.float32],
        eligible: NDArray[np.bool_] | None,
    ) -> None:
        self._index, self._geometry, self._items, self._query = index, geometry, items, query
        self._lists, self._distances, self._eligible = lists, distances, eligible
        self._read = np.zeros(geometry.list_sizes.size, dtype=np.bool_)
        self._mean: list[NDArray[np.intp]] = []
        self._mean_scores: list[NDArray[np.float32]] = []
        self._others: list[NDArray[np.intp]] = []
        self.probed = 0

    def first_stage(self, stop: int, size: int) -> None:
        """Every query's `stop` nearest lists, scored exactly: the best `size` rows per query.

        The nearest lists are small (a few hundred rows for 8 lists at 10⁶ items), so reading
        their rows' features and taking the exact product costs less than faiss's scan of
        their 8-bit codes, and the candidates are ranked by the true scores.
        """
        rows, scores = self._read_exactly(np.unique(self._lists[:, :stop]), self._query)
        for column in range(scores.shape[1]):
            best = _best(scores[:, column], size)
            if column == 0:
                self._mean.append(rows[best])
                self._mean_scores.append(scores[best, 0])
            else:
                self._others.append(rows[best])

    def next_stage(self, start: int, stop: int, size: int) -> None:
        """The mean's lists ranked [start, stop) not read yet: the best `size` of their rows."""
        lists = self._lists[0, start:stop]
        fresh = ~self._read[lists]
        lists, distances = lists[fresh], self._distances[0, start:stop][fresh]
        mean, stage_rows = self._query[:1], int(self._geometry.list_sizes[lists].sum())
        if stage_rows <= EXACT_STAGE_ROWS:
            rows, scores = self._read_exactly(lists, mean)
            best = _best(scores[:, 0], size)
            rows, found_scores = rows[best], scores[best, 0]
        else:
            found = self._index.search_lists(mean, lists[None, :], distances[None, :], size)
            self._read[lists] = True
            self.probed += stage_rows + size
            rows = self._eligible_of(found[0])
            found_scores = self._items.features[rows] @ mean[0]
        self._mean.append(rows)
        self._mean_scores.append(found_scores)

    def costly(self, depth: int, size: int) -> None:
        """The costly path: faiss's scan of every query's `depth` nearest lists."""
        lists = self._lists[:, :depth]
        found = self._index.search_lists(self._query, lists, self._distances[:, :depth], size)
        self.probed += int(self._geometry.list_sizes[lists].sum()) + self._query.shape[0] * size
        self._mean.append(self._eligible_of(found[0]))
        self._others.extend(self._eligible_of(rows) for rows in found[1:])

    def kth_mean_score(self, k: int) -> float | None:
        """The k-th best exact score among the mean's candidates (None: fewer than k)."""
        scores = self._mean_scores[0]
        if len(self._mean_scores) > 1:
            scores = np.concatenate(self._mean_scores)
        if scores.size < k:
            return None
        return float(np.partition(scores, scores.size - k)[scores.size - k])

    def rows(self) -> NDArray[np.intp]:
        """Every eligible row found, sorted and distinct."""
        return _distinct(np.concatenate([*self._mean, *self._others]))

    def _read_exactly(
        self, lists: NDArray[np.int64], queries: NDArray[np.float32]
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The eligible rows of `lists` and their exact scores for each query (a column each)."""
        rows = self._geometry.members(lists)
        self._read[lists] = True
        self.probed += int(rows.size)
        if self._eligible is not None:
            rows = rows[self._eligible[rows]]
        scores: NDArray[np.float32] = self._items.features[rows] @ queries.T
        return rows, scores

    def _eligible_of(self, found: NDArray[np.intp]) -> NDArray[np.intp]:
        rows = found[found >= 0]
        return rows if self._eligible is None else rows[self._eligible[rows]]


def _best(scores: NDArray[np.float32], size: int) -> NDArray[np.intp]:
    """Positions of the `size` highest scores (all of them when there are fewer)."""
    if scores.size <= size:
        return np.arange(scores.size)
    return np.argpartition(-scores, size - 1)[:size]


def _distinct(rows: NDArray[np.intp]) -> NDArray[np.intp]:
    """`rows` sorted without repeats (np.unique's result, without its general machinery)."""
    ordered = np.sort(rows)
    if ordered.size < 2:
        return ordered
    keep = np.empty(ordered.size, dtype=np.bool_)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


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
    kth: float | None,
    mean: NDArray[np.float64],
    next_list_sq: float,
    config: CascadeConfig,
) -> bool:
    """Whether the next unscanned list lies clearly farther than the k-th candidate (module doc).

    In the reduced space (feature_store.ann_index) the k-th best exact score s_k is the
    distance D_k = sqrt(|m|² + M² - 2 s_k); the next list's centroid (squared distance
    `next_list_sq`) must be more than `gate_margin` · M beyond it. Fewer than k candidates
    (`kth` None): never sure.
    """
    if kth is None:
        return False
    norm_sq = float(mean @ mean)
    kth_distance = np.sqrt(max(norm_sq + geometry.max_norm_sq - 2.0 * kth, 0.0))
    gap = np.sqrt(max(float(next_list_sq), 0.0)) - kth_distance
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
