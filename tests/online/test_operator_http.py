"""The HTTP details an operator meets first (issue 23, item 8): /models shows each model's
metrics, unknown paths answer {"error": …}, /docs works offline (Swagger UI from the
package), and the OpenAPI schema documents the error answers of /predict and /observe."""

from __future__ import annotations

import re

import httpx


def test_models_shows_the_snapshot_metrics(client: httpx.Client) -> None:
    """The synthetic snapshot was published with metrics {"rmse": 1.0}."""
    models = client.get("/models").json()["models"]
    assert [m["metrics"] for m in models] == [{"rmse": 1.0}]


def test_unknown_paths_and_methods_answer_with_error_bodies(client: httpx.Client) -> None:
    """404 and 405 from the framework have the same body shape as every other error."""
    missing = client.get("/no/such/path")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found"}
    wrong = client.delete("/models")
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "Method Not Allowed"}
    assert "GET" in wrong.headers["allow"]


def test_docs_loads_swagger_ui_from_the_service_itself(client: httpx.Client) -> None:
    """Every script and style sheet /docs refers to is served by the service, none by a CDN."""
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert any(a.endswith("swagger-ui.css") for a in assets)
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by the service"
        answer = client.get(asset)
        assert answer.status_code == 200 and len(answer.content) > 500, asset
    assert "/openapi.json" in page.text


def test_openapi_documents_the_error_answers(client: httpx.Client) -> None:
    """/predict and /observe list the statuses they answer with, each with the error body."""
    paths = client.get("/openapi.json").json()["paths"]
    expected = {"get /predict": {"400", "404", "422", "503"},
                "post /observe": {"400", "404", "413", "422", "503"}}  # fmt: skip
    for route, statuses in expected.items():
        method, path = route.split()
        responses = paths[path][method]["responses"]
        assert statuses | {"200"} <= set(responses), route
        for status in statuses:
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}
