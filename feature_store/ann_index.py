"""The inner-product ANN index of a large catalog: built at publish, checked at load.

Velox scores are maximum inner products (`w_u` is not unit-norm, and item norms carry
popularity), so the index is faiss's inverted file with `METRIC_INNER_PRODUCT` — never a
cosine or L2 index on normalised rows. Items are stored 8-bit scalar-quantised (a quarter of
the float32 bytes): the index only proposes candidates, and the service re-scores them exactly
from `items.features`, so quantisation moves an item's rank among the candidates, not the
score a user is shown.

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

INDEX_KIND = "ivf_sq8_ip"


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

    def to_dict(self) -> dict[str, Any]:
        """The JSON object kept under the manifest's `extra["ann_index"]`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, label: str) -> AnnParams:
        """Parse a manifest's `extra["ann_index"]`, refusing anything ill-typed."""
        names = set(cls.__dataclass_fields__)
        if not isinstance(data, dict) or set(data) != names:
            raise SnapshotCorruptError(f"{label}: ann_index must have exactly the keys {names}")
        ints = {k: v for k, v in data.items() if k != "kind"}
        if data["kind"] != INDEX_KIND or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints.values()
        ):
            raise SnapshotCorruptError(f"{label}: ann_index has invalid values {data}")
        return cls(**data)


def params_for(n_items: int, *, min_items: int = ANN_MIN_ITEMS) -> AnnParams | None:
    """Index parameters for a catalog of `n_items` (None: small enough for exact scoring).

    About 500 items per list (nlist ≈ n / 500, a power of two): probing 8 lists re-ranks a few
    thousand rows. The costly path probes 8x more and keeps 4x more candidates.
    """
    if n_items < min_items:
        return None
    nlist = 1 << max(4, int(np.log2(max(n_items // 500, 16))))
    return AnnParams(
        kind=INDEX_KIND,
        nlist=nlist,
        nprobe_cheap=8,
        nprobe_costly=64,
        candidates_cheap=256,
        candidates_costly=1024,
        train_sample=min(n_items, max(40 * nlist, 50_000)),
        seed=0,
    )


def build_index(features: NDArray[np.float32], params: AnnParams) -> bytes:
    """Train and fill the index over every item row; its serialised bytes."""
    import faiss

    n, dim = features.shape
    rows = np.ascontiguousarray(features, dtype=np.float32)
    rng = np.random.default_rng(params.seed)
    sample = rows[np.sort(rng.choice(n, size=min(n, params.train_sample), replace=False))]
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, dim, params.nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.seed = params.seed
    index.train(sample)
    index.add(rows)
    return bytes(faiss.serialize_index(index))


class AnnIndex:
    """A loaded index: candidate rows for query vectors (exact re-ranking is the caller's)."""

    def __init__(self, index: Any, params: AnnParams) -> None:
        """Wrap a faiss index built by `build_index` with the parameters it was built with."""
        self._index = index
        self.params = params

    @property
    def n(self) -> int:
        """Number of items indexed."""
        return int(self._index.ntotal)

    def centroids(self) -> NDArray[np.float32]:
        """The inverted lists' centroids (nlist, d), as the quantizer stores them."""
        import faiss

        ivf = faiss.extract_index_ivf(self._index)
        found: NDArray[np.float32] = ivf.quantizer.reconstruct_n(0, ivf.nlist)
        return found

    def search(
        self, queries: NDArray[np.float32], n_candidates: int, nprobe: int
    ) -> NDArray[np.intp]:
        """Rows of the best `n_candidates` per query (b, d), by quantised inner product.

        A row of the result may hold -1 where the probed lists had fewer items.
        """
        import faiss

        parameters = faiss.SearchParametersIVF(nprobe=nprobe)
        _, rows = self._index.search(
            np.ascontiguousarray(queries, dtype=np.float32), n_candidates, params=parameters
        )
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
        or index.d != dim
        or index.metric_type != faiss.METRIC_INNER_PRODUCT
        or faiss.extract_index_ivf(index).nlist != params.nlist
    ):
        raise SnapshotCorruptError(
            f"{label}: the ANN index ({index.ntotal} items, d = {index.d}) does not match the "
            f"catalog ({n_items} items, d = {dim}) or its manifest parameters"
        )
    faiss.omp_set_num_threads(1)  # one request, one core: threads only add hand-off latency
    return AnnIndex(index, params)
