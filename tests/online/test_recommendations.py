"""`GET /recommendations` on a live `velox serve`, over DuckDB and over PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from feature_store.registry import Registry
from tests.feature_store.score_tables.planted_table import brute_force_top_k
from tests.online.table_server import MODEL, TableServer, table_server
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def tables(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
) -> Iterator[TableServer]:
    """A table server per engine."""
    root, home = (str(tmp_path_factory.mktemp(name)) for name in ("snapshots", "home"))
    with table_server(str(request.param), root, home, redis_server) as server:
        yield server


@pytest.fixture
def client(tables: TableServer, redis_url: str) -> Iterator[httpx.Client]:
    """A client of the table server, with Redis flushed around the test."""
    with httpx.Client(base_url=tables.server.url, timeout=10.0) as http:
        yield http


def test_a_table_answer_is_the_brute_force_top_k(tables: TableServer, client: httpx.Client) -> None:
    """Known users, with and without filters that the top-8 can answer: source table."""
    snapshot = Registry(tables.root).load(MODEL)
    for user, k, where in [
        ("known0", 5, None),
        ("known3", 8, None),
        ("known1", 2, "genre == 'Comedy'"),
    ]:
        params: dict[str, str | int] = {"user": user, "k": k, **({"where": where} if where else {})}
        body = client.get("/recommendations", params=params).json()
        expected = brute_force_top_k(snapshot, user, k, where)
        assert (body["source"], body["complete"], body["fresh"]) == ("table", True, False)
        assert body["snapshot_version"] == 1 and body["model"] == MODEL
        assert [i["item"] for i in body["items"]] == [item for item, _ in expected]
        np.testing.assert_allclose(
            [i["score"] for i in body["items"]], [s for _, s in expected], rtol=1e-5
        )


def test_what_the_table_cannot_answer_is_answered_online(client: httpx.Client) -> None:
    """An unknown user and a filter leaving fewer than k of the top-8 go to /predict's top-k."""
    asks: list[dict[str, str | int]] = [
        {"user": "stranger", "k": 4},
        {"user": "known2", "k": 6, "where": "price < 3"},
    ]
    for params in asks:
        body = client.get("/recommendations", params=params).json()
        online = client.get("/predict", params={**params, "explore": "false"}).json()
        assert (body["source"], body["complete"]) == ("online", True)
        assert [i["item"] for i in body["items"]] == [i["item"] for i in online["items"]]


def test_fresh_re_ranks_with_the_current_posterior(client: httpx.Client) -> None:
    """After feedback, fresh=true orders the table's rows by the posterior-mean score."""
    stale = client.get("/recommendations", params={"user": "known4", "k": 8}).json()
    worst = stale["items"][-1]["item"]
    for _ in range(5):
        assert (
            client.post(
                "/observe", json={"user": "known4", "item": worst, "reward": 25.0}
            ).status_code
            == 200
        )
    body = client.get("/recommendations", params={"user": "known4", "k": 8, "fresh": "true"}).json()
    assert (body["source"], body["fresh"], body["complete"]) == ("table", True, True)
    assert sorted(i["item"] for i in body["items"]) == sorted(i["item"] for i in stale["items"])
    scores = {
        i["item"]: client.get("/predict", params={"user": "known4", "item": i["item"]}).json()[
            "score"
        ]
        for i in body["items"]
    }
    assert [i["item"] for i in body["items"]] == sorted(
        scores, key=lambda item: (-scores[item], item)
    )
    np.testing.assert_allclose(
        [i["score"] for i in body["items"]], [scores[i["item"]] for i in body["items"]], rtol=1e-5
    )
    assert body["items"][0]["item"] == worst  # the feedback shows


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"user": "known0", "where": "price <"}, 400),
        ({"user": "known0", "where": "nope == 1"}, 400),
        ({"user": "known0", "where": "genre == 'x'' OR 1=1 --'"}, 400),
        ({"user": "known0", "where": "price < 1; DROP TABLE t"}, 400),
        ({"user": "known0", "model": "movies'; DROP TABLE x; --"}, 400),
        ({"user": "known0", "model": "unknown"}, 404),
        ({"user": "known0", "k": 0}, 422),
        ({"user": "known0", "extra": "1"}, 422),
    ],
)
def test_bad_input_is_refused_with_a_message(
    client: httpx.Client, params: dict[str, str | int], status: int
) -> None:
    """Malformed filters and unsafe model names are 4xx with {"error": message}."""
    response = client.get("/recommendations", params=params)
    assert response.status_code == status, response.text
    assert response.json()["error"]


@pytest.mark.parametrize("user", ["known0' OR '1'='1", 'known0"; DROP TABLE t; --', "%s", "?"])
def test_injection_in_user_ids_changes_nothing(client: httpx.Client, user: str) -> None:
    """A user id is only ever a value: an unknown user, answered online; the table still serves."""
    before = client.get("/recommendations", params={"user": "known0", "k": 8}).json()
    body = client.get("/recommendations", params={"user": user, "k": 3}).json()
    assert body["source"] == "online"
    assert client.get("/recommendations", params={"user": "known0", "k": 8}).json() == before
