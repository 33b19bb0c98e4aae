"""Direct dispatch of the hot routes (`GET /predict`, `POST /observe`) to their endpoints.

Why: measured in-process (bench/bench_app_cpu.py: the same Redis, snapshot and requests,
interleaved), FastAPI's route matching, request wrapping and dependency solving cost 100-150
µs of CPU per hot request here, more than the Redis read and the scoring together. The hot
endpoints need none of it: each takes the raw `Request` and returns a finished `Response`
(see `online.deps`).
This middleware finds those `APIRoute`s on their routers when the app is built and calls
their endpoint functions directly. There is still one implementation of each route,
declared on its router as usual: OpenAPI at /docs is unchanged, any other method or path
goes through FastAPI, and only the framework's per-request work is skipped.

Errors are answered exactly as FastAPI's handlers answer them (`online.errors`): a
`VeloxError` becomes its status and `{"error": message}`; anything else propagates to
Starlette's `ServerErrorMiddleware` (a 500), as it would through the router.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from online.errors import velox_error_response
from velox.errors import VeloxError

Endpoint = Callable[[Request], Awaitable[Response]]

HOT_ROUTES = (("GET", "/predict"), ("POST", "/observe"))
"""The (method, path) pairs served directly."""


def _direct_endpoints(
    routers: Iterable[APIRouter], wanted: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Endpoint]:
    """The endpoint function of each wanted route; each must take only `request: Request`."""
    found: dict[tuple[str, str], Endpoint] = {}
    for route in (route for router in routers for route in router.routes):
        if not isinstance(route, APIRoute):
            continue
        for method in route.methods or ():
            key = (method, route.path)
            if key not in wanted:
                continue
            parameters = list(inspect.signature(route.endpoint).parameters.values())
            if [p.annotation for p in parameters] not in ([Request], ["Request"]):
                raise TypeError(f"{route.path}: a directly served endpoint takes only a Request")
            found[key] = route.endpoint
    missing = set(wanted) - set(found)
    if missing:
        raise LookupError(f"no route for {sorted(missing)}")
    return found


class DirectRoutes:
    """ASGI middleware: serve `HOT_ROUTES` by calling their endpoints, pass the rest on."""

    def __init__(self, app: ASGIApp, routers: Sequence[APIRouter]) -> None:
        """Wrap `app` (the rest of the stack); the hot routes are looked up in `routers`,
        which the app includes without a prefix."""
        self.app = app
        self._endpoints = _direct_endpoints(routers, HOT_ROUTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI call."""
        if scope["type"] == "http" and not scope.get("root_path"):
            endpoint = self._endpoints.get((scope["method"], scope["path"]))
            if endpoint is not None:
                request = Request(scope, receive, send)
                try:
                    response = await endpoint(request)
                except VeloxError as error:
                    response = velox_error_response(request, error)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
