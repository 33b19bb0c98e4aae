"""DirectRoutesApp serves the hot routes through their own endpoints, with FastAPI's answers."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request, Response

from online.direct_routes import DirectRoutesApp
from online.errors import UnprocessableError, install_error_handlers

router = APIRouter()
calls: list[str] = []


@router.get("/predict")
async def predict(request: Request) -> Response:
    """Echo `user`; refuse user=bad with a 422, crash on user=bug."""
    user = request.query_params.get("user", "")
    calls.append(user)
    if user == "bad":
        raise UnprocessableError("user: bad is not a user")
    if user == "bug":
        raise RuntimeError("a bug")
    return Response(user.encode(), 200, media_type="text/plain")


@router.post("/observe")
async def observe(request: Request) -> Response:
    """Echo the body."""
    return Response(await request.body(), 200, media_type="text/plain")


def app_of(*, direct: bool) -> FastAPI:
    """The test app, with or without direct dispatch."""
    app = DirectRoutesApp()
    install_error_handlers(app)
    app.include_router(router)
    if direct:
        app.serve_directly((router,))
    return app


def fetch(app: FastAPI, method: str, url: str, body: bytes = b"") -> httpx.Response:
    """One in-process request (this tests the dispatch, not the HTTP server)."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, url, content=body)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/predict?user=u1", b""),
        ("GET", "/predict?user=bad", b""),
        ("GET", "/predict?user=bug", b""),
        ("POST", "/observe", b'{"user": "u1"}'),
        ("POST", "/predict", b""),
        ("GET", "/observe", b""),
        ("GET", "/nowhere", b""),
    ],
)
def test_direct_answers_equal_fastapi_answers(method: str, url: str, body: bytes) -> None:
    direct = fetch(app_of(direct=True), method, url, body)
    routed = fetch(app_of(direct=False), method, url, body)
    assert (direct.status_code, direct.content) == (routed.status_code, routed.content)
    assert direct.headers.get("content-type") == routed.headers.get("content-type")


def test_the_hot_endpoints_run_once_per_request() -> None:
    calls.clear()
    response = fetch(app_of(direct=True), "GET", "/predict?user=u7")
    assert response.status_code == 200 and response.text == "u7"
    assert calls == ["u7"]


def test_an_endpoint_that_needs_fastapi_is_refused() -> None:
    other = APIRouter()

    @other.get("/predict")
    async def needs_a_parameter(user: str) -> str:
        return user

    with pytest.raises(TypeError, match="takes only a Request"):
        DirectRoutesApp().serve_directly((other, router))


def test_a_missing_hot_route_is_refused() -> None:
    with pytest.raises(LookupError, match="/observe"):
        DirectRoutesApp().serve_directly((APIRouter(),))
