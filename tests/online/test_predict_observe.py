"""/predict and /observe over a real socket: the score contract, read-your-writes, options."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import numpy as np
import pytest
import redis

from online.redis_keys import UserKeys
from online.schemas import ObserveResponse, PredictResponse, ScoreResponse
from tests.online.closed_form import expected_mean, expected_score, load
from tests.online.redis_view import user_decisions, user_events
from tests.support.redis_server import RedisServer


def fresh_user() -> str:
    """A user id no other test uses."""
    return f"user-{uuid.uuid4().hex[:12]}"


def score(client: httpx.Client, user: str, item: str) -> ScoreResponse:
    """GET /predict?user=&item=."""
    response = client.get("/predict", params={"user": user, "item": item})
    assert response.status_code == 200, response.text
    result: ScoreResponse = response.json()
    return result


def top_k(client: httpx.Client, **params: str | int) -> PredictResponse:
    """GET /predict?user=&k=... ."""
    response = client.get("/predict", params=params)
    assert response.status_code == 200, response.text
    result: PredictResponse = response.json()
    return result


def observe(client: httpx.Client, **body: object) -> ObserveResponse:
    """POST /observe."""
    response = client.post("/observe", json=body)
    assert response.status_code == 200, response.text
    result: ObserveResponse = response.json()
    return result


def test_observed_score_equals_the_closed_form(
    client: httpx.Client, snapshot_root: str, redis_server: RedisServer
) -> None:
    snapshot = load(snapshot_root)
    user = fresh_user()
    shown = top_k(client, user=user, k=5)
    state_key = UserKeys.of("movies", user).state(1)
    assert redis.Redis.from_url(redis_server.url).exists(state_key) == 0  # predict writes none
    item = shown["items"][0]["item"]
    assert shown["items"][0]["score"] == pytest.approx(
        expected_score(snapshot, user, item, []), rel=1e-5
    )
    observe(client, user=user, item=item, reward=2.5, prediction_id=shown["prediction_id"])
    assert score(client, user, item)["score"] == pytest.approx(
        expected_score(snapshot, user, item, [(item, 2.5)]), rel=1e-5
    )


def test_every_score_includes_every_observation(client: httpx.Client, snapshot_root: str) -> None:
    snapshot = load(snapshot_root)
    user = "known1"  # the snapshot has a batch-trained w0 for this user
    observations = [("i3", 1.0), ("i7", -0.5), ("i3", 0.25), ("i12", 3.0)]
    for item, reward in observations:
        observe(client, user=user, item=item, reward=reward)
    answer = top_k(client, user=user, k=40, explore="false")
    assert [entry["propensity"] for entry in answer["items"]] == [1.0] * 40
    mean = expected_mean(snapshot, user, observations)
    expected = snapshot.items.features.astype(np.float64) @ mean
    got = {entry["item"]: entry["score"] for entry in answer["items"]}
    for item, row in snapshot.item_index.items():
        assert got[item] == pytest.approx(expected[row], rel=1e-5, abs=1e-6)
    ranking = [entry["item"] for entry in answer["items"]]
    assert ranking == [str(snapshot.item_ids[row]) for row in np.argsort(-expected, kind="stable")]


def test_item_score_has_the_predictive_std(client: httpx.Client, snapshot_root: str) -> None:
    snapshot = load(snapshot_root)
    user = fresh_user()
    observe(client, user=user, item="i1", reward=1.0)
    answer = score(client, user, "i2")
    x = snapshot.items.features[snapshot.item_index["i2"]].astype(np.float64)
    x1 = snapshot.items.features[snapshot.item_index["i1"]].astype(np.float64)
    precision = snapshot.lam * np.eye(snapshot.dim) + np.outer(x1, x1)
    std = snapshot.noise_std * np.sqrt(x @ np.linalg.solve(precision, x))
    assert answer["std"] == pytest.approx(std, rel=1e-6)
    assert answer["version"] == 1


def test_exclude_seen_and_where_restrict_the_items(client: httpx.Client) -> None:
    user = fresh_user()
    for item in ("i1", "i5", "i9"):  # genre Comedy: i % 4 == 1
        observe(client, user=user, item=item, reward=1.0)
    answer = top_k(client, user=user, k=40, where="genre == 'Comedy'", exclude_seen="true")
    items = {entry["item"] for entry in answer["items"]}
    assert items == {f"i{i}" for i in range(40) if i % 4 == 1} - {"i1", "i5", "i9"}


def test_thompson_propensities_are_probabilities(client: httpx.Client) -> None:
    answer = top_k(client, user=fresh_user(), k=10)
    propensities = [entry["propensity"] for entry in answer["items"]]
    assert len(propensities) == 10
    assert all(0.0 < p <= 1.0 for p in propensities)
    egreedy = top_k(client, user=fresh_user(), k=3, policy="egreedy:0.5")
    assert all(0.0 < entry["propensity"] <= 1.0 for entry in egreedy["items"])


def test_repeated_event_id_changes_nothing(client: httpx.Client, redis_server: RedisServer) -> None:
    user = fresh_user()
    first = observe(client, user=user, item="i4", reward=1.0, event_id="evt-1")
    before = score(client, user, "i4")
    again = observe(client, user=user, item="i4", reward=5.0, event_id="evt-1")
    assert not first["duplicate"]
    assert again["duplicate"]
    assert score(client, user, "i4") == before
    assert len(user_events(redis_server.url, "movies", user)) == 1


def test_the_log_carries_the_propensity_of_the_shown_item(
    client: httpx.Client, redis_server: RedisServer
) -> None:
    user = fresh_user()
    shown = top_k(client, user=user, k=3)
    item = shown["items"][1]
    observe(client, user=user, item=item["item"], reward=1.0, prediction_id=shown["prediction_id"])
    (fields,) = user_events(redis_server.url, "movies", user)
    assert fields["prediction_id"] == shown["prediction_id"]
    assert float(fields["propensity"]) == item["propensity"]
    (logged,) = user_decisions(redis_server.url, "movies", user)
    assert logged["prediction_id"] == shown["prediction_id"]
    assert logged["version"] == "1"
    assert logged["policy"].startswith("thompson")
    assert json.loads(logged["items"]) == [entry["item"] for entry in shown["items"]]
    assert json.loads(logged["propensities"]) == [e["propensity"] for e in shown["items"]]
    assert logged["candidates"] == "40"  # the whole synthetic catalog


def test_the_log_counts_the_candidates_left_by_where_and_exclude_seen(
    client: httpx.Client, redis_server: RedisServer
) -> None:
    user = fresh_user()
    for item in ("i1", "i5", "i2"):  # two comedies (i % 4 == 1) and one other item
        observe(client, user=user, item=item, reward=1.0)
    top_k(client, user=user, k=3, where="genre == 'Comedy'", exclude_seen="true")
    top_k(client, user=user, k=3, exclude_seen="true")
    top_k(client, user=user, k=3, where="genre == 'Comedy'")
    deadline = time.monotonic() + 5  # the last answer's record may wait up to 20 ms to be sent
    while len(logged := user_decisions(redis_server.url, "movies", user)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert [entry["candidates"] for entry in logged] == ["8", "37", "10"]


def test_models_health_and_docs(client: httpx.Client) -> None:
    models = client.get("/models").json()
    assert models["default"] == "movies"
    assert [(m["model"], m["version"], m["items"], m["dim"]) for m in models["models"]] == [
        ("movies", 1, 40, 6)
    ]
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json() == {"status": "ok", "detail": "movies v1"}
    spec = client.get("/openapi.json").json()
    parameters = {p["name"] for p in spec["paths"]["/predict"]["get"]["parameters"]}
    assert {"user", "k", "item", "where", "explore", "exclude_seen", "policy"} <= parameters
    assert "requestBody" in spec["paths"]["/observe"]["post"]


def test_metrics_count_requests(client: httpx.Client) -> None:
    def value(text: str, sample: str) -> float:
        lines = [line for line in text.splitlines() if line.startswith(sample + " ")]
        return float(lines[0].split()[-1]) if lines else 0.0

    predictions = 'velox_predictions_total{model="movies"}'
    applied = 'velox_observations_total{model="movies",outcome="applied"}'
    not_found = 'velox_request_errors_total{status="404"}'
    before = client.get("/metrics").text
    user = fresh_user()
    top_k(client, user=user, k=2)
    observe(client, user=user, item="i1", reward=1.0)
    client.get("/predict", params={"user": user, "item": "missing"})
    after = client.get("/metrics").text
    assert value(after, predictions) == value(before, predictions) + 1
    assert value(after, applied) == value(before, applied) + 1
    assert value(after, not_found) == value(before, not_found) + 1
    assert value(after, 'velox_snapshot_version{model="movies"}') == 1.0
