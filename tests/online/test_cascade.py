"""The retrieval cascade over a snapshot with an ANN index: answers, filters, exploration."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest

from feature_store.ann_index import augmented
from feature_store.snapshot import Snapshot
from online.retrieval import cascade as cascade_module
from online.retrieval.cascade import CascadeConfig, retrieve
from online.retrieval.index_geometry import IndexGeometry, geometry_of, ranked
from online.retrieval.served_cascade import ServedCascade
from tests.feature_store.test_ann_index import N_ITEMS, publish_catalog
from tests.online.live_server import LiveServer
from tests.online.redis_view import logged_decisions
from tests.support.redis_server import RedisServer
from velox.catalog import ItemMatrix
from velox.policies import make_policy
from velox.posterior import UserPosterior
from velox.scoring import score_items, top_k


@pytest.fixture(scope="module")
def catalog_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with model `big` v1: 3000 synthetic items with an index, current."""
    root = tmp_path_factory.mktemp("catalog")
    publish_catalog(root)
    return root


@pytest.fixture(scope="module")
def snapshot(catalog_root: Path) -> Snapshot:
    """The loaded snapshot."""
    from feature_store.registry import Registry

    return Registry(str(catalog_root)).load("big")


def posterior_of(snapshot: Snapshot, user: int) -> UserPosterior:
    """A known user's prior posterior (mean = its batch weights)."""
    return UserPosterior.prior(snapshot.w0_for(f"u{user}"), snapshot.lam, snapshot.noise_std)


def exact(
    snapshot: Snapshot, posterior: UserPosterior, k: int, allowed: np.ndarray | None
) -> list[int]:
    """The exact greedy answer over the whole catalog."""
    rows: list[int] = top_k(
        score_items(snapshot.items, posterior.mean()), k, allowed=allowed
    ).tolist()
    return rows


def test_probing_every_list_gives_the_exact_answer(snapshot: Snapshot) -> None:
    """At 3000 items the costly path probes all 16 lists: recall 1 is the known right answer."""
    assert (
        snapshot.ann is not None and snapshot.ann.params.nprobe_costly >= snapshot.ann.params.nlist
    )
    cascade = ServedCascade(snapshot, snapshot.ann, CascadeConfig(gated=False), seed=0)
    greedy = make_policy("greedy")
    for user in range(30):
        posterior = posterior_of(snapshot, user)
        chosen, found = cascade.select(greedy, posterior, 10, None, None, explore=False)
        assert found.source == "ann-costly"
        assert chosen.items.tolist() == exact(snapshot, posterior, 10, None)
        np.testing.assert_allclose(
            chosen.scores, score_items(snapshot.items, posterior.mean())[chosen.items], rtol=1e-6
        )


@pytest.mark.parametrize("exact_stage_rows", [0, cascade_module.EXACT_STAGE_ROWS])
def test_an_unsure_request_widens_stage_by_stage_to_every_list_scanned_once(
    snapshot: Snapshot, exact_stage_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gate that is never sure searches the next lists until all 16 are scanned: the answer
    is then the exact one, and each list was read exactly once (rows touched = the whole
    catalog: the 8 nearest lists, then the other 8 — read and scored exactly, or, with the
    exact-stage limit at 0, scanned by faiss, which adds the candidates it re-ranks)."""
    monkeypatch.setattr(cascade_module, "EXACT_STAGE_ROWS", exact_stage_rows)
    assert snapshot.ann is not None
    params = snapshot.ann.params
    assert (params.nlist, params.nprobe_cheap) == (16, 8)
    never_sure = CascadeConfig(gate_margin=1e9)
    cascade = ServedCascade(snapshot, snapshot.ann, never_sure, seed=0)
    greedy = make_policy("greedy")
    for user in range(30):
        posterior = posterior_of(snapshot, user)
        chosen, found = cascade.select(greedy, posterior, 10, None, None, explore=False)
        assert found.source == "ann-costly"
        faiss_candidates = params.candidates_cheap if exact_stage_rows == 0 else 0
        assert found.probed_rows == N_ITEMS + faiss_candidates
        assert chosen.items.tolist() == exact(snapshot, posterior, 10, None)


def test_a_sure_request_stops_after_the_nearest_lists(snapshot: Snapshot) -> None:
    """A gate that is always sure reads only the 8 lists nearest the mean: rows touched are
    exactly those lists' sizes, every candidate lies in them, and the candidates are the best
    of those rows by the exact score."""
    assert snapshot.ann is not None
    index, params = snapshot.ann, snapshot.ann.params
    geometry = IndexGeometry.of(index, snapshot.items)
    always_sure = CascadeConfig(gate_margin=-1e9)
    for user in range(10):
        posterior = posterior_of(snapshot, user)
        found = retrieve(index, geometry, snapshot.items, posterior, 10, None, always_sure, None)
        query = posterior.mean().astype(np.float32)[None, :]
        nearest, _ = ranked(geometry.distances(query), params.nprobe_cheap)
        assert found.source == "ann-cheap"
        assert found.probed_rows == int(geometry.list_sizes[nearest[0]].sum())
        reduced = augmented(snapshot.items.features[found.rows], params.max_norm_sq)
        centroids = index.centroids()  # the rows' own lists: faiss assigns the nearest centroid
        own_list = np.argmin(((reduced[:, None, :] - centroids[None, :, :]) ** 2).sum(2), axis=1)
        assert found.rows.size > 0 and set(own_list.tolist()) <= set(nearest[0].tolist())
        scanned = geometry.list_rows[geometry.positions(nearest[0])]
        scores = snapshot.items.features[scanned] @ query[0]
        best = scanned[np.argsort(-scores)[: params.candidates_cheap]]
        assert set(found.rows.tolist()) == set(best.tolist())


def test_a_rare_filter_is_an_exact_scan_and_a_common_one_never_returns_fewer_than_k(
    snapshot: Snapshot,
) -> None:
    cascade = ServedCascade(snapshot, snapshot.ann, CascadeConfig(), seed=0)  # type: ignore[arg-type]
    greedy = make_policy("greedy")
    posterior = posterior_of(snapshot, 1)
    rare = snapshot.filters.mask("category == 'cat7' and price < 20")
    assert 10 < np.count_nonzero(rare) < 0.02 * N_ITEMS
    chosen, found = cascade.select(greedy, posterior, 10, rare, None, explore=False)
    assert found.source == "scan"
    assert chosen.items.tolist() == exact(snapshot, posterior, 10, rare)
    common = snapshot.filters.mask("price < 20")
    assert np.count_nonzero(common) > 0.2 * N_ITEMS
    for user in range(20):
        chosen, found = cascade.select(
            greedy, posterior_of(snapshot, user), 10, common, None, explore=False
        )
        assert found.source.startswith("ann")
        assert len(chosen.items) == 10 and bool(common[chosen.items].all())


def test_k_beyond_the_filtered_set_and_an_empty_filter(snapshot: Snapshot) -> None:
    cascade = ServedCascade(snapshot, snapshot.ann, CascadeConfig(), seed=0)  # type: ignore[arg-type]
    policy = make_policy("thompson")
    posterior = posterior_of(snapshot, 2)
    few = snapshot.filters.mask("item in ('i5', 'i17', 'i2999')")
    chosen, _ = cascade.select(policy, posterior, 10, few, None, explore=True)
    assert sorted(chosen.items.tolist()) == [5, 17, 2999]
    nothing = snapshot.filters.mask("year > 3000")
    chosen, _ = cascade.select(policy, posterior, 10, nothing, None, explore=True)
    assert chosen.items.size == 0


def test_exploration_reaches_items_outside_the_greedy_neighbourhood(snapshot: Snapshot) -> None:
    """ε-greedy with ε = 1 shows uniformly among the candidates; the cascade's random rows and
    the posterior draw's neighbourhood put items there that the mean's search never proposes."""
    cascade = ServedCascade(snapshot, snapshot.ann, CascadeConfig(gated=False), seed=0)  # type: ignore[arg-type]
    posterior = posterior_of(snapshot, 3)
    _, greedy_set = cascade.select(make_policy("greedy"), posterior, 10, None, None, explore=False)
    neighbourhood = set(greedy_set.rows.tolist())
    shown: set[int] = set()
    for _ in range(50):
        chosen, found = cascade.select(
            make_policy("egreedy:1.0", seed=1), posterior, 10, None, None, explore=True
        )
        shown.update(chosen.items.tolist())
        assert set(found.rows.tolist()) >= neighbourhood
    assert shown - neighbourhood, "exploration never left the greedy neighbourhood"


def test_predict_over_http_logs_the_candidate_source(
    tmp_path: Path, redis_server: RedisServer, catalog_root: Path
) -> None:
    server = LiveServer(
        tmp_path,
        {"VELOX_REDIS_URL": redis_server.url, "VELOX_SNAPSHOT_ROOT": str(catalog_root),
         "VELOX_MODEL": "big", "VELOX_SEED": "3"},
    )  # fmt: skip
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            answer = http.get("/predict", params={"user": "u4", "k": 10})
            assert answer.status_code == 200 and len(answer.json()["items"]) == 10
            scan = http.get(
                "/predict", params={"user": "u5", "k": 3, "where": "item in ('i1', 'i2')"}
            )
            assert sorted(item["item"] for item in scan.json()["items"]) == ["i1", "i2"]
        sources = {d["source"] for d in logged_decisions(redis_server.url, "big", "u4")}
        assert sources <= {"ann-cheap", "ann-costly", "ann-widened"} and sources
        assert {d["source"] for d in logged_decisions(redis_server.url, "big", "u5")} == {"scan"}
    finally:
        server.stop()


def test_items_added_after_the_index_are_candidates(snapshot: Snapshot) -> None:
    """An item appended to the catalog (as PUT /items does) is not in the index, yet the
    cascade proposes it: a planted item that outscores everything is the greedy answer."""
    posterior = posterior_of(snapshot, 6)
    best = (snapshot.items.features[0] * 0 + posterior.mean() * 10).astype(np.float32)
    features = np.vstack([snapshot.items.features, best[None, :]])
    extended = replace(snapshot, items=ItemMatrix.from_features(features))
    assert extended.ann is not None and extended.ann.n == N_ITEMS
    cascade = ServedCascade(extended, extended.ann, CascadeConfig(), seed=0)
    chosen, found = cascade.select(make_policy("greedy"), posterior, 3, None, None, explore=False)
    assert N_ITEMS in found.rows.tolist()
    assert chosen.items[0] == N_ITEMS


def test_each_candidate_comes_with_its_own_features_and_norms(snapshot: Snapshot) -> None:
    """The policy ranks `found.catalog`, read from the index geometry's list-ordered copy of
    the features: its row i must be catalog row `found.rows[i]` exactly, on every path (the
    staged gate through faiss or exact reads, the costly path, a filter, items added online),
    and the rows are sorted and distinct."""
    assert snapshot.ann is not None
    best = (snapshot.items.features[:1] * 0 + posterior_of(snapshot, 6).mean() * 10).astype(
        np.float32
    )
    extended = replace(
        snapshot, items=ItemMatrix.from_features(np.vstack([snapshot.items.features, best]))
    )
    common = snapshot.filters.mask("price < 20")
    runs = [
        (snapshot, CascadeConfig(), None),
        (snapshot, CascadeConfig(gate_margin=1e9), None),
        (snapshot, CascadeConfig(gated=False), None),
        (snapshot, CascadeConfig(), common),
        (extended, CascadeConfig(), None),
    ]
    for catalog, config, allowed in runs:
        assert catalog.ann is not None
        cascade = ServedCascade(catalog, catalog.ann, config, seed=0)
        for user in range(10):
            for policy, explore in (
                (make_policy("greedy"), False),
                (make_policy("thompson"), True),
            ):
                _, found = cascade.select(
                    policy, posterior_of(catalog, user), 10, allowed, None, explore=explore
                )
                rows = found.rows
                assert np.all(rows[1:] > rows[:-1])
                np.testing.assert_array_equal(found.catalog.features, catalog.items.features[rows])
                np.testing.assert_array_equal(found.catalog.norms, catalog.items.norms[rows])


def test_a_snapshot_installed_again_shares_its_index_geometry(snapshot: Snapshot) -> None:
    """Items added online re-install the same snapshot (same index, rows appended): the
    list-ordered copy of the features is built once per loaded index, not per install."""
    assert snapshot.ann is not None
    extended = ItemMatrix.from_features(np.vstack([snapshot.items.features] * 2))
    first = geometry_of(snapshot.ann, snapshot.items)
    assert geometry_of(snapshot.ann, extended) is first
    assert first.n_indexed == N_ITEMS
    np.testing.assert_array_equal(first.list_features, snapshot.items.features[first.list_rows])
    np.testing.assert_array_equal(first.list_rows[first.position_of], np.arange(N_ITEMS))


def test_reading_lists_gives_each_row_with_its_exact_scores(snapshot: Snapshot) -> None:
    """A stage reads its lists slab by slab: the positions name each list's rows in turn, the
    scores are those rows' features times each query, and a stage left with no list to read
    (an exploring query's first stage read them all) reads nothing."""
    assert snapshot.ann is not None
    geometry = geometry_of(snapshot.ann, snapshot.items)
    queries = np.stack([posterior_of(snapshot, u).mean() for u in (1, 2)]).astype(np.float32)
    lists = np.array([3, 0, 11], dtype=np.int64)
    positions = geometry.positions(lists)
    rows = geometry.list_rows[positions]
    offsets, members = snapshot.ann.list_members()
    expected = np.concatenate([members[offsets[j] : offsets[j + 1]] for j in lists])
    np.testing.assert_array_equal(rows, expected)
    scores = geometry.scores(lists, np.ascontiguousarray(queries.T))
    np.testing.assert_allclose(scores, queries @ snapshot.items.features[rows].T, rtol=1e-5)
    nothing = np.empty(0, dtype=np.int64)
    assert geometry.positions(nothing).size == 0
    assert geometry.scores(nothing, np.ascontiguousarray(queries.T)).shape == (2, 0)
