"""The dashboard's data endpoints on `velox serve`, in order: before any traffic (no data
yet), then after planted traffic whose right answers are known (closed forms)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import BaseModel

from jobs.quickstart import dashboard_url
from online.dashboard import schemas
from online.dashboard.extensions import OPTIONAL_PANELS
from online.dashboard.ope import CANDIDATES
from tests.online.dashboard_service import CYCLES, MODEL, dashboard_server, metric_value
from tests.online.live_server import LiveServer
from tests.support.redis_server import RedisServer

DATA: dict[str, type[BaseModel]] = {
    "/dashboard/data/panels": schemas.PanelsResponse,
    "/dashboard/data/overview": schemas.OverviewResponse,
    "/dashboard/data/traffic": schemas.TrafficResponse,
    "/dashboard/data/learning": schemas.LearningResponse,
    "/dashboard/data/ope": schemas.OpeResponse,
    "/dashboard/data/extensions": schemas.ExtensionsResponse,
}
REWARDS = [float(n % 7) - 1.5 for n in range(20)]
"""One reward per fresh user (unknown to the snapshot), each shown one item greedily."""
BAD_REQUESTS = 3
TABLE_USERS = 5
"""The synthetic snapshot's known users, each with a top-5 row set in the planted table."""


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[LiveServer]:
    """The service with its planted history (two versions, two retrain cycles)."""
    with dashboard_server(tmp_path_factory.mktemp("home"), redis_server) as live:
        yield live


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    """A client of the server."""
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


def get(http: httpx.Client, path: str, **params: str) -> Any:
    """GET a data endpoint, check it against its schema, return the JSON."""
    response = http.get(path, params=params)
    assert response.status_code == 200, response.text
    DATA[path].model_validate(response.json())
    return response.json()


def test_each_data_endpoint_is_a_typed_get_in_openapi(http: httpx.Client) -> None:
    """Every data path is in /openapi.json as a GET answering its named schema, and no
    /dashboard path takes any other method."""
    paths = http.get("/openapi.json").json()["paths"]
    for path, model in DATA.items():
        schema = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model.__name__}"}
    methods = {m for path, ops in paths.items() if path.startswith("/dashboard") for m in ops}
    assert methods == {"get"}
    assert http.post("/dashboard/data/traffic").status_code == 405


def test_no_data_yet(http: httpx.Client) -> None:
    """Before any /predict or /observe: empty samples, null means, no estimates."""
    learning = get(http, "/dashboard/data/learning")
    assert (learning["events"], learning["decisions"], learning["slots"]) == (0, 0, 0)
    assert learning["reward_mean"] is None and learning["explored_share"] is None
    assert learning["users_with_state"] == {
        "version": 2, "count": 0, "counted_at": learning["users_with_state"]["counted_at"],
        "pass_keys_scanned": 0,
    }  # fmt: skip
    ope = get(http, "/dashboard/data/ope")
    assert (ope["rows"], ope["estimates"], ope["logged_mean_reward"]) == (0, [], None)
    assert ope["note"] == "no rewarded /predict answers in the recent logs yet"
    tables, items, batching = get(http, "/dashboard/data/extensions")["panels"]
    assert {m["label"]: m["value"] for m in tables["metrics"]} == {
        "movies table version": 1, "movies built from snapshot": 1, "movies snapshot served": 2,
        "movies fresh": "no: snapshot moved on", "movies rows": 5 * TABLE_USERS,
        "movies age": tables["metrics"][4]["value"],
    }  # fmt: skip
    assert 0 < tables["metrics"][4]["value"] < 600 and tables["metrics"][4]["unit"] == "s"
    assert items["metrics"] == [
        {"label": "movies items added", "value": "none: kind mf has no item tower", "unit": ""}
    ]
    assert (batching["available"], batching["reason"]) == (False, OPTIONAL_PANELS[2].absent)


def test_overview_shows_the_planted_history(http: httpx.Client) -> None:
    """v2 current after v1, training metrics, and the two cycles newest first."""
    panels = get(http, "/dashboard/data/panels")
    assert (panels["models"], panels["default_model"]) == ([MODEL], MODEL)
    assert panels["ope_policies"] == list(CANDIDATES)
    (model,) = get(http, "/dashboard/data/overview")["models"]
    assert (model["model"], model["version"], model["kind"], model["dim"], model["items"]) == (
        MODEL, 2, "mf", 6, 40,
    )  # fmt: skip
    assert (model["lam"], model["noise_std"], model["metrics"]) == (2.0, 0.5, {"rmse": 1.0})
    assert [(v["version"], v["status"]) for v in model["versions"]] == [
        (2, "current"), (1, "previous"),
    ]  # fmt: skip
    assert (model["pointer"]["current"], model["pointer"]["history"]) == (2, [1])
    cycles = [(c["outcome"], c["seconds"], c["version"], c["detail"]) for c in model["cycles"]]
    planted = [(r.outcome.value, r.seconds, r.version, r.detail) for r in reversed(CYCLES)]
    assert cycles == planted
    assert model["cycle_counts"] == {"promoted": 1, "rejected": 1}


def plant_greedy_rounds(http: httpx.Client) -> None:
    """Each fresh user is shown one item greedily (propensity 1) and rewards it."""
    for n, reward in enumerate(REWARDS):
        answer = http.get("/predict", params={"user": f"fresh{n}", "k": 1, "explore": "false"})
        (shown,) = answer.json()["items"]
        assert shown["propensity"] == 1.0
        body = {"user": f"fresh{n}", "item": shown["item"], "reward": reward,
                "prediction_id": answer.json()["prediction_id"]}  # fmt: skip
        assert http.post("/observe", json=body).status_code == 200
    for _ in range(BAD_REQUESTS):
        assert http.get("/predict", params={"user": "x", "k": 0}).status_code == 422


def test_learning_and_ope_of_planted_rounds(http: httpx.Client) -> None:
    """Known rewards, no exploration: the sample's numbers and the closed-form estimates."""
    plant_greedy_rounds(http)
    mean = float(np.mean(REWARDS))
    learning = get(http, "/dashboard/data/learning")
    assert (learning["events"], learning["decisions"], learning["slots"]) == (20, 20, 20)
    assert learning["reward_mean"] == pytest.approx(mean)
    assert (learning["explored_slots"], learning["explored_share"]) == (0, 0.0)
    assert learning["propensities"]["counts"] == [0] * 19 + [20]
    assert learning["policies"] == {"greedy": 20}
    assert learning["users_with_state"]["count"] == 20
    # The target acts from the snapshot's prior, as the logged greedy did for fresh users:
    # greedy's weights are all 1, so IPS = SNIPS = DR = the mean reward exactly.
    ope = get(http, "/dashboard/data/ope", policy="greedy")
    assert (ope["rows"], ope["logged_policies"]) == (20, {"greedy": 20})
    assert {e["estimator"]: e["value"] for e in ope["estimates"]} == pytest.approx(
        {"ips": mean, "snips": mean, "dr": mean}
    )
    # egreedy:0.1 puts 0.9 + 0.1/40 on the greedy item: IPS scales by it, SNIPS does not.
    ope = get(http, "/dashboard/data/ope", policy="egreedy:0.1")
    values = {e["estimator"]: e["value"] for e in ope["estimates"]}
    assert values["ips"] == pytest.approx((0.9 + 0.1 / 40) * mean)
    assert values["snips"] == pytest.approx(mean)


def test_traffic_agrees_with_metrics(http: httpx.Client) -> None:
    """Totals equal /metrics; the window holds the planted requests and 422s; Redis answers."""
    time.sleep(1.2)  # one sampler tick after the planted requests
    traffic = get(http, "/dashboard/data/traffic")
    metrics = http.get("/metrics").text
    totals = {name: metric_value(metrics, name)
              for name in ("velox_predictions_total", "velox_observations_total")}  # fmt: skip
    assert traffic["predictions_total"] == totals["velox_predictions_total"] >= len(REWARDS)
    assert traffic["observations_total"] == totals["velox_observations_total"]
    predict, observe = traffic["routes"]
    assert predict["requests"] >= len(REWARDS) + BAD_REQUESTS and observe["requests"] >= 20
    assert 0 < predict["p50_ms"] <= predict["p95_ms"] <= predict["p99_ms"]
    errors = {e["status"]: e["total"] for e in traffic["errors"]}
    assert errors["422"] == BAD_REQUESTS == metric_value(metrics, "velox_request_errors_total",
                                                         'status="422"')  # fmt: skip
    assert traffic["redis_rtt_ms"] is not None and traffic["redis_rtt_ms"] > 0


def test_bad_input_is_a_4xx_with_an_error(http: httpx.Client) -> None:
    """Unknown policy spec 400, unknown model 404, unknown asset 404: {"error": message}."""
    for path, params, status in (
        ("/dashboard/data/ope", {"policy": "bogus"}, 400),
        ("/dashboard/data/learning", {"model": "nope"}, 404),
        ("/dashboard/data/ope", {"model": "nope"}, 404),
        ("/dashboard/static/secrets.txt", {}, 404),
        ("/dashboard/static/index.html", {}, 404),
    ):
        response = http.get(path, params=params)
        assert response.status_code == status, (path, response.text)
        assert set(response.json()) == {"error"}


def test_the_page_and_its_assets_are_served_locally(http: httpx.Client, server: LiveServer) -> None:
    """The page, at quickstart's address, loads only its own assets (no CDN), has no forms."""
    page = httpx.get(dashboard_url(server.port))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assets = {"charts.js": "text/javascript", "panels.js": "text/javascript",
              "dashboard.js": "text/javascript", "dashboard.css": "text/css"}  # fmt: skip
    for name, media in assets.items():
        assert f"/dashboard/static/{name}" in html
        asset = http.get(f"/dashboard/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(media)
        assert "://" not in asset.text.replace("http://www.w3.org/2000/svg", "")
    assert "://" not in html
    assert not any(tag in html for tag in ("<form", "<button", "<input", "<textarea"))
