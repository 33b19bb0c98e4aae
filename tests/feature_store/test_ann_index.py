"""The ANN index a large catalog's snapshot carries: published, verified, refused when wrong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from batch.datasets.large_catalog import CatalogSpec, synthetic_catalog
from feature_store.ann_index import AnnParams, build_index, params_for
from feature_store.errors import SnapshotCorruptError
from feature_store.layout import INDEX, MANIFEST
from feature_store.publish import publish_snapshot
from feature_store.registry import Registry
from feature_store.storage import sha256_hex

N_ITEMS = 3000


def publish_catalog(root: Path, seed: int = 0, n_items: int = N_ITEMS) -> Registry:
    """Model `big` v1, a synthetic catalog published with its index (threshold lowered)."""
    registry = Registry(str(root))
    data = synthetic_catalog(CatalogSpec(n_items=n_items, dim=16, n_users=50, seed=seed))
    manifest = publish_snapshot(registry.storage, "big", data, parent=None, ann_min_items=1000)
    registry.promote("big", manifest.version)
    return registry


def test_small_catalogs_get_no_index() -> None:
    features = np.ones((999, 4), dtype=np.float32)
    assert params_for(features, min_items=1000) is None
    assert params_for(np.ones((1000, 4), dtype=np.float32), min_items=1000) is not None


def test_publish_writes_a_checksummed_index_that_loads(tmp_path: Path) -> None:
    registry = publish_catalog(tmp_path)
    version_dir = tmp_path / "big" / "v1"
    manifest = json.loads((version_dir / MANIFEST).read_text())
    assert manifest["files"][INDEX] == sha256_hex((version_dir / INDEX).read_bytes())
    params = AnnParams.from_dict(manifest["extra"]["ann_index"], "big v1")
    snapshot = registry.load("big")
    assert snapshot.ann is not None and snapshot.ann.n == N_ITEMS
    assert snapshot.ann.params == params


def test_probing_every_list_returns_the_exact_inner_product_top_k(tmp_path: Path) -> None:
    """The MIPS→L2 reduction is exact: with every list probed and every row returned, the
    index's first candidates are the highest inner products (up to 8-bit quantisation, so the
    exact re-rank of a generous candidate set gives exactly the true top 10)."""
    snapshot = publish_catalog(tmp_path).load("big")
    assert snapshot.ann is not None
    rng = np.random.default_rng(3)
    queries = rng.standard_normal((20, 16)).astype(np.float32)
    found = snapshot.ann.search(queries, 200, nprobe=snapshot.ann.params.nlist)
    for query, rows in zip(queries, found, strict=True):
        scores = snapshot.items.features @ query
        exact = set(np.argsort(-scores)[:10].tolist())
        best = rows[np.argsort(-(snapshot.items.features[rows] @ query))[:10]]
        assert set(best.tolist()) == exact


def test_an_index_of_another_catalog_is_refused_at_load(tmp_path: Path) -> None:
    registry = publish_catalog(tmp_path / "a")
    other = synthetic_catalog(CatalogSpec(n_items=N_ITEMS - 1, dim=16, n_users=5, seed=1))
    params = params_for(other.item_features, min_items=1000)
    assert params is not None
    version_dir = tmp_path / "a" / "big" / "v1"
    wrong = build_index(other.item_features, params)
    (version_dir / INDEX).write_bytes(wrong)
    manifest = json.loads((version_dir / MANIFEST).read_text())
    manifest["files"][INDEX] = sha256_hex(wrong)  # a consistent checksum: only the size is off
    (version_dir / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(SnapshotCorruptError, match="does not match the catalog"):
        registry.load("big")


def test_an_index_file_without_its_manifest_entry_is_refused(tmp_path: Path) -> None:
    registry = publish_catalog(tmp_path)
    path = tmp_path / "big" / "v1" / MANIFEST
    manifest = json.loads(path.read_text())
    del manifest["extra"]["ann_index"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(SnapshotCorruptError, match="ANN index"):
        registry.load("big")
