"""Planted tables: both engines answer the brute-force filtered top-k of the snapshot."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from feature_store.errors import InvalidModelNameError
from feature_store.registry import Registry
from feature_store.score_tables import ScoreTableCorruptError, ScoreTableNotFoundError, table_dir
from feature_store.score_tables.engine import ScoreEngine, TableAnswer
from feature_store.score_tables.postgres_engine import PostgresEngine
from feature_store.snapshot import Snapshot
from tests.feature_store.planted import planted_data
from tests.feature_store.score_tables.engines import ENGINES, make_engine, random_filter
from tests.feature_store.score_tables.planted_table import (
    brute_force_top_k,
    publish_planted_table,
    ranked,
    user_scores,
)
from velox.errors import FilterError
from velox.filters import FilterCache

MODEL = "movies"
TOP_N = 20


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """60 planted items (NULL titles and prices, genre lists) and 16 users."""
    registry = Registry(str(tmp_path / "snapshots"))
    registry.publish(MODEL, planted_data(seed=11, n=60, m=16))
    return registry


@pytest.fixture(params=ENGINES)
def engine(
    request: pytest.FixtureRequest, registry: Registry, postgres_url: str
) -> Iterator[ScoreEngine]:
    """Each engine in turn, over the registry's tables."""
    engine = make_engine(str(request.param), registry, postgres_url)
    yield engine
    engine.close()


def publish_and_load(registry: Registry, engine: ScoreEngine, top_n: int | None) -> int:
    """Publish a brute-force table of the current snapshot and load it into `engine`."""
    manifest = publish_planted_table(registry, MODEL, top_n=top_n)
    engine.load(MODEL, manifest.table_version)
    return manifest.table_version


def expected_answer(
    snapshot: Snapshot, user: str, k: int, where: str, top_n: int | None
) -> tuple[list[tuple[str, float]], bool]:
    """The filtered rows of the user's top-N (at most k), and whether they are the true top-k."""
    scores = user_scores(snapshot, user)
    top = {item for item, _ in ranked(snapshot, scores, np.ones(len(scores), bool), top_n)}
    mask = (
        np.asarray(FilterCache(snapshot.columns).mask(where))
        if where
        else np.ones(len(scores), bool)
    )
    in_top = mask & np.isin(snapshot.item_ids, list(top))
    rows = ranked(snapshot, scores, in_top, k)
    complete = len(rows) >= k or top_n is None
    if complete:
        assert rows == brute_force_top_k(snapshot, user, k, where)
    return rows, complete


def assert_same(answer: TableAnswer, rows: list[tuple[str, float]]) -> None:
    """Same items in the same order, scores within 1e-5 relative."""
    assert [row.item for row in answer.rows] == [item for item, _ in rows]
    got = np.array([row.score for row in answer.rows])
    want = np.array([score for _, score in rows])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=0)


@pytest.mark.parametrize("top_n", [TOP_N, None])
def test_random_filters_match_brute_force(
    registry: Registry, engine: ScoreEngine, top_n: int | None
) -> None:
    """40 random filters x 3 random users: rows, order, scores, completeness and ranks."""
    version = publish_and_load(registry, engine, top_n)
    snapshot = registry.load(MODEL)
    rng = random.Random(7)
    users = [str(u) for u in snapshot.user_ids]
    filters = [random_filter(rng) for _ in range(40)]
    incomplete = 0
    for where in ["", *filters]:
        for user in rng.sample(users, 3):
            k = rng.choice([1, 5, 10, 25])
            answer = engine.top_k(MODEL, user, k, where or None)
            rows, complete = expected_answer(snapshot, user, k, where, top_n)
            assert_same(answer, rows)
            assert (answer.complete, answer.user_known) == (complete, True)
            assert (answer.table_version, answer.snapshot_version) == (version, snapshot.version)
            full = [
                item
                for item, _ in ranked(
                    snapshot, user_scores(snapshot, user), np.ones(60, bool), None
                )
            ]
            assert [row.rank for row in answer.rows] == [
                1 + full.index(row.item) for row in answer.rows
            ]
            incomplete += not complete
    assert incomplete > 0 if top_n else incomplete == 0  # both kinds of answer were checked


def test_unknown_users_and_models(registry: Registry, engine: ScoreEngine) -> None:
    """A user the table lacks is unknown and incomplete; unknown or unsafe models are refused."""
    publish_and_load(registry, engine, TOP_N)
    answer = engine.top_k(MODEL, "nobody", 5)
    assert (answer.rows, answer.user_known, answer.complete) == ((), False, False)
    with pytest.raises(ScoreTableNotFoundError):
        engine.top_k("other", "user-1", 5)
    with pytest.raises(InvalidModelNameError):
        engine.top_k("movies'; DROP TABLE x; --", "user-1", 5)


@pytest.mark.parametrize(
    "where",
    [
        "title == 'x'' OR 1=1 --'",
        "year > 0; DROP TABLE t",
        'title == "a" or 1 == 1',
        "\"user_id\" == 'user-1'",
    ],
)
def test_injection_in_where_is_refused(registry: Registry, engine: ScoreEngine, where: str) -> None:
    """Attempts to smuggle SQL through `where` are filter errors; the table is unchanged."""
    publish_and_load(registry, engine, TOP_N)
    before = engine.top_k(MODEL, "user-1", 30)
    with pytest.raises(FilterError):
        engine.top_k(MODEL, "user-1", 5, where)
    assert engine.top_k(MODEL, "user-1", 30) == before


def test_a_compiled_filter_is_reused_only_by_its_table_version(
    registry: Registry, engine: ScoreEngine
) -> None:
    """The second ask of a `where` reuses its compiled SQL and answers alike; a refused `where`
    is refused every time; a new table version compiles it again for its own columns."""
    first = publish_and_load(registry, engine, TOP_N)
    where = "price < 30 and not title == 'x'"
    answers = [engine.top_k(MODEL, user, 5, where) for user in ("user-1", "user-2", "user-1")]
    assert answers[0] == answers[2] and answers[0] != answers[1]
    assert list(engine._conditions) == [(MODEL, first, where)]
    for _ in range(2):
        with pytest.raises(FilterError):
            engine.top_k(MODEL, "user-1", 5, "no_such_column > 1")
    registry.publish(MODEL, planted_data(seed=12, n=60, m=16))
    second = publish_and_load(registry, engine, TOP_N)
    engine._checked_at.clear()  # the next ask follows the new version at once
    snapshot = registry.load(MODEL)
    rows, _ = expected_answer(snapshot, "user-1", 5, where, TOP_N)
    assert_same(engine.top_k(MODEL, "user-1", 5, where), rows)
    assert (MODEL, second, where) in engine._conditions


@pytest.mark.parametrize("user", ["user-1' OR '1'='1", 'user-1"; DROP TABLE t; --', "%s", "?"])
def test_injection_in_user_ids_finds_nobody(
    registry: Registry, engine: ScoreEngine, user: str
) -> None:
    """A user id is a value, never SQL: these match no row and break nothing."""
    publish_and_load(registry, engine, TOP_N)
    assert engine.top_k(MODEL, user, 5).rows == ()
    assert len(engine.top_k(MODEL, "user-1", 5).rows) == 5


def test_bad_checksum_is_refused_and_the_old_table_serves(
    registry: Registry, engine: ScoreEngine
) -> None:
    """A damaged new version never serves; the next good version switches in."""
    first = publish_and_load(registry, engine, TOP_N)
    assert engine.top_k(MODEL, "user-2", 3).table_version == first
    damaged = publish_planted_table(registry, MODEL, top_n=TOP_N)
    part = (
        Path(registry.storage.description)
        / table_dir(MODEL, damaged.table_version)
        / "part-00000.parquet"
    )
    data = bytearray(part.read_bytes())
    data[100] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises(ScoreTableCorruptError):
        engine.load(MODEL, damaged.table_version)
    assert engine.top_k(MODEL, "user-2", 3).table_version == first
    third = publish_and_load(registry, engine, 5)
    answer = engine.top_k(MODEL, "user-2", 3)
    assert answer.table_version == third and answer.complete


def test_postgres_keeps_the_newest_versions_and_reloads_idempotently(
    registry: Registry, postgres_url: str
) -> None:
    """keep=2: a third load drops the first relation; loading a kept version switches back."""
    engine = make_engine("postgres", registry, postgres_url)
    assert isinstance(engine, PostgresEngine)
    try:
        versions = [publish_and_load(registry, engine, top_n) for top_n in (5, 10, 15)]
        schema = engine.config.schema_name
        with psycopg.connect(postgres_url) as connection:
            loaded = connection.execute(
                f'SELECT table_version, is_current FROM "{schema}".tables ORDER BY 1'  # noqa: S608
            ).fetchall()
            relations = connection.execute(
                "SELECT relname, relkind FROM pg_class JOIN pg_namespace n ON n.oid = relnamespace "
                "WHERE nspname = %s AND relkind IN ('r', 'p') AND relname LIKE 't\\_%%' ORDER BY 1",
                [schema],
            ).fetchall()
        assert loaded == [(versions[1], False), (versions[2], True)]
        parents = [name for name, kind in relations if kind == "p"]
        assert [name.rsplit("_", 1)[1] for name in parents] == [str(v) for v in versions[1:]]
        partitions = [name for name, kind in relations if kind == "r"]
        assert {name.rsplit("_", 1)[0] for name in partitions} == set(parents)
        assert len(engine.top_k(MODEL, "user-3", 50).rows) == 15
        engine.load(MODEL, versions[1])  # already loaded: no COPY, just the switch
        assert len(engine.top_k(MODEL, "user-3", 50).rows) == 10
    finally:
        engine.close()
