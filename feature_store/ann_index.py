"""The inner-product ANN index of a large catalog: built at publish, checked at load.

Velox scores are maximum inner products (`w_u` is not unit-norm, and item norms carry
popularity), never cosines. The index answers that exactly-posed question through the
MIPS→L2 reduction (Bachrach et al., RecSys 2014): each item x gets one more coordinate
sqrt(M² - |x|²), M the largest item norm, and a query q gets 0 there, so
|q' - x'|² = |q|² + M² - 2 qᵀx: the nearest items in L2 are exactly the highest inner
products. Measured here on the synthetic 10⁶-item catalog (bench/bench_cascade.py), faiss's
inverted file with `METRIC_INNER_PRODUCT` directly reached recall@10 0.71 at 64 probed lists
(its inner-product k-means lets large-norm centroids swallow the lists), the reduction 0.99.
Items are stored 8-bit scalar-quantised (a quarter of the float32 bytes): the index only
proposes candidates, and the service re-scores them exactly from `items.features`, so
quantisation moves an item's rank among the candidates, not the score a user is shown.

On disk the index is faiss's own serialisation (no pickle) in `index.faiss`, hashed in the
manifest like every file; its parameters are under `extra["ann_index"]`. Loading copies the
verified bytes into faiss's structures (faiss reads from a buffer only by copying; 1 byte per
item and dimension, about 64 MB at 10⁶ items, d = 64).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from feature_store.errors import SnapshotCorruptError

ANN_MIN_ITEMS = 100_000
"""Catalogs this large or larger get an index; below, exact scoring is cheaper than a search.

Measured (bench/bench_cascade.py): an exact score + top-k over 10⁵ items, d = 64, takes about
1.5 ms of one core here, already more than an index search plus a re-rank of a thousand rows.
"""

INDEX_KIND = "ivf_sq8_mips_l2"


@dataclass(frozen=True)
class AnnParams:
    """How an index was built and how the cascade searches it (stored in the manifest)."""

    kind: str
    nlist: int
    nprobe_cheap: int
    nprobe_costly: int
    candidates_cheap: int
    candidates_costly: int
    train_sample: int
    seed: int
    max_norm_sq: float
    """M², the largest squared item norm (the reduction's constant)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object kept under the manifest's `extra["ann_index"]`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, label: str) -> AnnParams:
        """Parse a manifest's `extra["ann_index"]`, refusing anything ill-typed."""
        names = set(cls.__dataclass_fields__)
        if not isinstance(data, dict) or set(data) != names:
            raise SnapshotCorruptError(f"{label}: ann_index must have exactly the keys {names}")
        ints = {k: v for k, v in data.items() if k not in ("kind", "max_norm_sq")}
        norm = data["max_norm_sq"]
        if (
            data["kind"] != INDEX_KIND
            or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints.values()
            )
            or not (isinstance(norm, int | float) and not isinstance(norm, bool) and norm >= 0)
        ):
            raise SnapshotCorruptError(f"{label}: ann_index has invalid values {data}")
        return cls(**data)


def params_for(
    features: NDArray[np.float32], *, min_items: int = ANN_MIN_ITEMS
) -> AnnParams | None:
    """Index parameters for a catalog (None: small enough for exact scoring).

    About 500-1000 items per list (nlist a power of two); the cheap stage probes 8 lists for
    512 candidates, the gate widens stage by stage up to the costly path's 128 lists and 1,024
    candidates (online/retrieval/cascade.py; the trade-off measured in BENCHMARKS.md).
    """
    n_items = int(features.shape[0])
    if n_items < min_items:
        return None
    norms_sq = np.einsum("ij,ij->i", features, features, dtype=np.float64)
    nlist = 1 << max(4, int(np.log2(max(n_items // 500, 16))))
    return AnnParams(
        kind=INDEX_KIND,
        nlist=nlist,
        nprobe_cheap=8,
        nprobe_costly=128,
        candidates_cheap=512,
        candidates_costly=1024,
        train_sample=min(n_items, max(40 * nlist, 50_000)),
        seed=0,
        max_norm_sq=float(norms_sq.max()),
    )


def augmented(rows: NDArray[np.float32], max_norm_sq: float) -> NDArray[np.float32]:
    """Items with the reduction's extra coordinate sqrt(M² - |x|²) (module doc)."""
    norms_sq = np.einsum("ij,ij->i", rows, rows, dtype=np.float64)
    extra = np.sqrt(np.maximum(max_norm_sq - norms_sq, 0.0)).astype(np.float32)
    return np.hstack([rows, extra[:, None]])


def query_rows(queries: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
    """Queries with the reduction's extra coordinate 0."""
    found = np.zeros((queries.shape[0], queries.shape[1] + 1), dtype=np.float32)
    found[:, :-1] = queries
    return found


def build_index(features: NDArray[np.float32], params: AnnParams) -> bytes:
    """Train and fill the index over every item row; its serialised bytes."""
    import faiss

    n, dim = features.shape
    rows = augmented(np.ascontiguousarray(features, dtype=np.float32), params.max_norm_sq)
    rng = np.random.default_rng(params.seed)
    sample = rows[np.sort(rng.choice(n, size=min(n, params.train_sample), replace=False))]
    quantizer = faiss.IndexFlatL2(dim + 1)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, dim + 1, params.nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2
    )
    index.cp.seed = params.seed
    index.train(sample)
    index.add(rows)
    return bytes(faiss.serialize_index(index))


class AnnIndex:
    """A loaded index: candidate rows for query vectors (exact re-ranking is the caller's)."""

    def __init__(self, index: Any, params: AnnParams) -> None:
        """Wrap a faiss index built by `build_index` with the parameters it was built with."""
        import faiss

        self._index = index
        self._ivf: Any = faiss.extract_index_ivf(index)  # its IVF part, looked up once
        self.params = params

    @property
    def n(self) -> int:
        """Number of items indexed."""
        return int(self._index.ntotal)

    def centroids(self) -> NDArray[np.float32]:
        """The inverted lists' centroids in the reduced space (nlist, d + 1)."""
        found: NDArray[np.float32] = self._ivf.quantizer.reconstruct_n(0, self._ivf.nlist)
        return found

    def list_members(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The rows of every inverted list: (offsets (nlist + 1,), rows), list j's rows being
        `rows[offsets[j]:offsets[j + 1]]` (read once per snapshot; 8 bytes per item)."""
        import faiss

        ivf = self._ivf
        lists = ivf.invlists
        assert lists is not None  # a loaded IVF index always has its lists
        sizes = np.array([lists.list_size(j) for j in range(ivf.nlist)], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        rows = np.empty(int(offsets[-1]), dtype=np.int64)
        for j in range(ivf.nlist):
            if sizes[j]:
                ids = faiss.rev_swig_ptr(lists.get_ids(j), int(sizes[j]))
                rows[offsets[j] : offsets[j + 1]] = ids
        return offsets, rows

    def search_lists(
        self,
        queries: NDArray[np.float32],
        lists: NDArray[np.int64],
        list_distances: NDArray[np.float32],
        n_candidates: int,
    ) -> NDArray[np.intp]:
        """Rows of the best `n_candidates` per query (b, d) among the given lists (b, L) only.

        The caller ranked the lists (their squared distances to each query, in the reduced
        space, are `list_distances`), so a search can go on with the next lists without
        repeating the ones already scanned. A row of the result may hold -1.
        """
        import faiss

        ivf = self._ivf  # search_preassigned_c: the C entry point, which takes parameters
        x = np.ascontiguousarray(query_rows(queries))
        assign = np.ascontiguousarray(lists, dtype=np.int64)
        coarse = np.ascontiguousarray(list_distances, dtype=np.float32)
        n = x.shape[0]
        distances = np.empty((n, n_candidates), dtype=np.float32)
        rows = np.empty((n, n_candidates), dtype=np.int64)
        parameters = faiss.SearchParametersIVF()
        parameters.nprobe = int(assign.shape[1])
        ivf.search_preassigned_c(
            n,
            faiss.swig_ptr(x),
            n_candidates,
            faiss.swig_ptr(assign),
            faiss.swig_ptr(coarse),
            faiss.swig_ptr(distances),
            faiss.swig_ptr(rows),
            False,
            parameters,
        )
        found: NDArray[np.intp] = rows.astype(np.intp, copy=False)
        return found

    def search(
        self, queries: NDArray[np.float32], n_candidates: int, nprobe: int
    ) -> NDArray[np.intp]:
        """Rows of the best `n_candidates` per query (b, d), by quantised inner product.

        A row of the result may hold -1 where the probed lists had fewer items.
        """
        import faiss

        parameters = faiss.SearchParametersIVF()
        parameters.nprobe = nprobe
        _, rows = self._index.search(query_rows(queries), n_candidates, params=parameters)
        found: NDArray[np.intp] = rows.astype(np.intp, copy=False)
        return found


def load_index(data: Any, params: AnnParams, n_items: int, dim: int, label: str) -> AnnIndex:
    """Deserialise verified index bytes and check they index exactly this catalog."""
    import faiss

    try:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as error:
        raise SnapshotCorruptError(f"{label}: unreadable ANN index: {error}") from error
    if (
        index.ntotal != n_items
        or index.d != dim + 1
        or index.metric_type != faiss.METRIC_L2
        or faiss.extract_index_ivf(index).nlist != params.nlist
    ):
        raise SnapshotCorruptError(
            f"{label}: the ANN index ({index.ntotal} items, d = {index.d - 1}) does not match the "
            f"catalog ({n_items} items, d = {dim}) or its manifest parameters"
        )
    faiss.omp_set_num_threads(1)  # one request, one core: threads only add hand-off latency
    return AnnIndex(index, params)
