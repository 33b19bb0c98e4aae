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
  float32 features (a list-ordered copy: each list one contiguous slab, index_geometry.py)
  and scored exactly, and the best `candidates_cheap` per query are kept.
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
from online.retrieval.index_geometry import IndexGeometry, ranked
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
    """Eligible candidate rows (sorted, unique), how they were found, and their features."""

    rows: NDArray[np.intp]
    source: str
    """`ann-cheap`, `ann-costly`, `ann-widened` or `scan` (exact scan of the eligible rows)."""
    probed_rows: int
    """Rows the search touched (index lists scanned + rows re-ranked): its compute."""
    catalog: ItemMatrix
    """The candidates as a catalog of their own (its row i is `rows[i]`), what the policy
    chooses among: read from the list-ordered copy the stages have just read, not gathered
    again from the scattered catalog rows."""


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
        return _scan(items, rows, int(rows.size))
    mean = posterior.mean()
    query = np.empty((1 if rng is None else 2, items.dim), dtype=np.float32)
    query[0] = mean
    if rng is not None:
        query[1] = posterior.sample(rng)
    params = index.params
    depth = min(params.nprobe_costly, params.nlist)
    search = _StagedSearch(index, geometry, query, depth, eligible)
    if not config.gated:
        end, source = depth, "ann-costly"
        search.costly(params.candidates_costly)
    else:
        end, source = min(params.nprobe_cheap, depth), "ann-cheap"
        search.first_stage(end, params.candidates_cheap)
        while end < depth and not _confident(
            geometry, search.kth_mean_score(k), mean, search.mean_distance(end), config
        ):
            stop = min(2 * end, depth)
            search.next_stage(end, stop, params.candidates_cheap)
            source, end = "ann-costly", stop
    found, probed = search.found, search.probed
    if search.mean_found < k:  # maybe fewer than k eligible rows: widen (module doc)
        rows, positions = _distinct(geometry, found)
        nprobe, size = end, params.candidates_costly
        while rows.size < k:
            nprobe, size = nprobe * WIDEN, size * WIDEN
            if nprobe >= params.nlist:
                everything = (
                    np.flatnonzero(eligible) if eligible is not None else np.arange(items.n)
                )
                return _scan(items, everything, probed + items.n)
            wider = geometry.position_of[_search(index, query, size, nprobe, eligible)]
            rows, positions = _distinct(geometry, [positions, wider])
            source, probed = "ann-widened", probed + _probed(index, nprobe, size, len(query))
        found = [positions]
    if rng is not None and config.random_rows > 0:
        drawn = _random_eligible(items.n, eligible, config.random_rows, rng)
        found.append(geometry.position_of[drawn[drawn < geometry.n_indexed]])
    rows, positions = _distinct(geometry, found)
    catalog = ItemMatrix(geometry.features_at(positions), geometry.list_norms[positions])
    if items.n > geometry.n_indexed:  # items added online since the index was built: always
        added = np.arange(geometry.n_indexed, items.n)  # candidates (drawn ones among them)
        added = added if eligible is None else added[eligible[added]]
        rows = np.concatenate([rows, added])  # past every indexed row: still sorted
        catalog = ItemMatrix(
            np.concatenate([catalog.features, items.features[added]]),
            np.concatenate([catalog.norms, items.norms[added]]),
        )
    return Candidates(rows, source, probed, catalog)


EXACT_STAGE_ROWS = 4096
"""A later stage whose lists hold at most this many rows reads and scores them exactly;
a larger one is a faiss scan of their 8-bit codes (cheaper per row, one call's fixed cost)."""


class _StagedSearch:
    """One request's search over its ranked lists, stage by stage, counting rows touched.

    The first stage reads the rows of every query's nearest lists and scores them exactly;
    the later ones search only the mean's next lists that no stage has read yet, exactly
    while they are small and through faiss beyond, so the mean's rows never repeat and
    their exact scores, kept as they come, give the gate its k-th best score. Rows are kept
    as their positions in the geometry's list order (`found`), where their features are
    read: from the slabs the stages have just read, not from the scattered catalog rows.
    """

    def __init__(
        self,
        index: AnnIndex,
        geometry: IndexGeometry,
        query: NDArray[np.float32],
        depth: int,
        eligible: NDArray[np.bool_] | None,
    ) -> None:
        self._index, self._geometry, self._query = index, geometry, query
        self._query_t = np.ascontiguousarray(query.T)
        self._all_distances = geometry.distances(query)
        self._depth = depth
        self._ranking: tuple[NDArray[np.int64], NDArray[np.float32]] | None = None
        self._after_first: tuple[int, float] = (-1, 0.0)
        self._eligible = eligible
        self._read = np.zeros(geometry.list_sizes.size, dtype=np.bool_)
        self._mean_scores: list[NDArray[np.float32]] = []
        self.found: list[NDArray[np.int64]] = []
        """Positions of the rows kept, stage by stage."""
        self.mean_found = 0
        """Rows found for the mean so far (distinct: no list is read twice)."""
        self.probed = 0

    def mean_distance(self, rank: int) -> float:
        """The squared distance from the mean to its list ranked `rank` (0: the nearest)."""
        if rank == self._after_first[0]:
            return self._after_first[1]
        return float(self._ranked()[1][0, rank])

    def _ranked(self) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Each query's `depth` nearest lists, nearest first, and their squared distances:
        sorted only for a request that goes past the first stage (about half)."""
        if self._ranking is None:
            self._ranking = ranked(self._all_distances, self._depth)
        return self._ranking

    def first_stage(self, stop: int, size: int) -> None:
        """Every query's `stop` nearest lists, scored exactly: the best `size` rows per query.

        The nearest lists are small (a few hundred rows for 8 lists at 10⁶ items), so reading
        their rows' features and taking the exact product costs less than faiss's scan of
        their 8-bit codes, and the candidates are ranked by the true scores.
        """
        distances = self._all_distances
        if stop < distances.shape[1]:  # the `stop` nearest in any order, and the next one
            nearest = np.argpartition(distances, stop, axis=1)
            self._after_first = (stop, float(distances[0, nearest[0, stop]]))
            nearest = nearest[:, :stop]
        else:
            nearest = np.broadcast_to(np.arange(distances.shape[1]), distances.shape)
        if len(nearest) == 1:
            lists = nearest[0]
        else:  # every query's lists, each once (sorted, as np.unique has them, in 3 calls)
            chosen = np.zeros(distances.shape[1], dtype=np.bool_)
            chosen[nearest] = True
            lists = np.flatnonzero(chosen)
        positions, scores = self._read_exactly(lists, self._query_t)
        if positions.size <= size:  # every query keeps every row
            self.found.append(positions)
            self._mean_scores.append(scores[0])
            self.mean_found = int(positions.size)
            return
        best = _best(scores[0], size)
        self._mean_scores.append(scores[0, best])
        self.mean_found = size
        if len(scores) > 1:  # the rows any query keeps, each once
            keep = np.zeros(positions.size, dtype=np.bool_)
            keep[best] = True
            for other in scores[1:]:
                keep[_best(other, size)] = True
            best = np.flatnonzero(keep)
        self.found.append(positions[best])

    def next_stage(self, start: int, stop: int, size: int) -> None:
        """The mean's lists ranked [start, stop) not read yet: the best `size` of their rows."""
        ranked_lists, ranked_distances = self._ranked()
        lists = ranked_lists[0, start:stop]
        fresh = ~self._read[lists]
        lists, distances = lists[fresh], ranked_distances[0, start:stop][fresh]
        mean, stage_rows = self._query[:1], int(self._geometry.list_sizes[lists].sum())
        if stage_rows <= EXACT_STAGE_ROWS:
            positions, all_scores = self._read_exactly(lists, self._query_t[:, :1])
            best = _best(all_scores[0], size)
            positions, scores = positions[best], all_scores[0, best]
        else:
            found = self._index.search_lists(mean, lists[None, :], distances[None, :], size)
            self._read[lists] = True
            self.probed += stage_rows + size
            positions = self._geometry.position_of[self._eligible_of(found[0])]
            scores = self._geometry.features_at(positions) @ mean[0]
        self.found.append(positions)
        self._mean_scores.append(scores)
        self.mean_found += int(positions.size)

    def costly(self, size: int) -> None:
        """The costly path: faiss's scan of every query's `depth` nearest lists."""
        lists, distances = self._ranked()
        found = self._index.search_lists(self._query, lists, distances, size)
        self.probed += int(self._geometry.list_sizes[lists].sum()) + self._query.shape[0] * size
        self.found.extend(self._geometry.position_of[self._eligible_of(rows)] for rows in found)
        self.mean_found = int(self.found[0].size)

    def kth_mean_score(self, k: int) -> float | None:
        """The k-th best exact score among the mean's candidates (None: fewer than k)."""
        scores = self._mean_scores[0]
        if len(self._mean_scores) > 1:
            scores = np.concatenate(self._mean_scores)
        if scores.size < k:
            return None
        return float(np.partition(scores, scores.size - k)[scores.size - k])

    def _read_exactly(
        self, lists: NDArray[np.int64], queries_t: NDArray[np.float32]
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The positions of the eligible rows of `lists` and their exact scores, a row per
        query (`queries_t`: one per column)."""
        positions = self._geometry.positions(lists)
        scores = self._geometry.scores(lists, queries_t)
        self._read[lists] = True
        self.probed += int(positions.size)
        if self._eligible is not None:
            keep = self._eligible[self._geometry.list_rows[positions]]
            positions, scores = positions[keep], scores[:, keep]
        return positions, scores

    def _eligible_of(self, found: NDArray[np.intp]) -> NDArray[np.intp]:
        rows = found[found >= 0]
        return rows if self._eligible is None else rows[self._eligible[rows]]


def _distinct(
    geometry: IndexGeometry, found: list[NDArray[np.int64]]
) -> tuple[NDArray[np.intp], NDArray[np.int64]]:
    """The distinct rows at the positions `found`, sorted, and their positions."""
    positions = found[0] if len(found) == 1 else np.concatenate(found)
    rows = geometry.list_rows[positions]
    order = np.argsort(rows, kind="stable")  # radix sort of ints: half the default's time
    rows = rows[order]
    if rows.size > 1:
        keep = np.empty(rows.size, dtype=np.bool_)
        keep[0] = True
        np.not_equal(rows[1:], rows[:-1], out=keep[1:])
        order, rows = order[keep], rows[keep]
    return rows, positions[order]


def _scan(items: ItemMatrix, rows: NDArray[np.intp], probed: int) -> Candidates:
    """The exact scan: every eligible row (`rows`) a candidate, `probed` rows touched."""
    catalog = ItemMatrix(features=items.features[rows], norms=items.norms[rows])
    return Candidates(rows, "scan", probed, catalog)


def _best(scores: NDArray[np.float32], size: int) -> NDArray[np.intp]:
    """Positions of the `size` highest scores (all of them when there are fewer)."""
    if scores.size <= size:
        return np.arange(scores.size)
    return np.argpartition(scores, scores.size - size)[scores.size - size :]


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
    drawn = rng.integers(0, n, size=count * 2 if eligible is not None else count, dtype=np.intp)
    return drawn if eligible is None else drawn[eligible[drawn]][:count]
