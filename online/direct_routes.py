"""Direct dispatch of the hot routes (`GET /predict`, `POST /observe`) to their endpoints.

Why: measured in-process (bench/bench_app_cpu.py: the same Redis, snapshot and requests,
interleaved), FastAPI's route matching, request wrapping and dependency solving cost 100-150
µs of CPU per hot request here, more than the Redis read and the scoring together. The hot
endpoints need none of it: each takes the raw `Request` and returns a finished `Response`
(see `online.deps`).
`DirectRoutesApp` finds those `APIRoute`s on their routers when the app is built and calls
their endpoint functions directly, before the middleware stack: Starlette's error middleware,
FastAPI's telemetry and body-limit wrappers cost another ~6 µs a request and do nothing for
these endpoints (measured with bench/bench_service.py). There is still one implementation of
each route, declared on its router as usual: OpenAPI at /docs is unchanged, any other method
or path goes through FastAPI, and only the framework's per-request work is skipped. A
middleware added to the app later does not see the hot routes.

Access control (`online.access`) is checked here, first, for every HTTP call, hot or not: the
one place no route can bypass. With no key configured it costs one attribute test.

Errors are answered exactly as FastAPI answers them (`online.errors`): a `VeloxError` becomes
its status and `{"error": message}`; anything else becomes Starlette's plain 500 and is raised
on to the server, as `ServerErrorMiddleware` does.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from online.access import AccessGate, refusal_response
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


class DirectRoutesApp(FastAPI):
    """A FastAPI app that serves `HOT_ROUTES` itself, in front of its middleware stack.

    After `serve_directly(routers)`, an HTTP call to a hot route goes straight to its endpoint;
    every other call (and every call before it) goes through FastAPI as usual.
    """

    def __init__(self, **kwargs: Any) -> None:
        """Take FastAPI's arguments; nothing is served directly yet."""
        super().__init__(**kwargs)
        self.direct_endpoints: dict[tuple[str, str], Endpoint] = {}
        self.access: AccessGate | None = None

    def serve_directly(self, routers: Sequence[APIRouter]) -> None:
        """Serve the hot routes found in `routers` (included without a prefix) directly."""
        self.direct_endpoints = _direct_endpoints(routers, HOT_ROUTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI call."""
        if scope["type"] == "http" and self.access is not None:
            refused = self.access.refusal(scope)
            if refused is not None:
                scope["app"] = self
                request = Request(scope, receive, send)
                await refusal_response(request, refused)(scope, receive, send)
                return
        if scope["type"] == "http" and not self.root_path and not scope.get("root_path"):
            endpoint = self.direct_endpoints.get((scope["method"], scope["path"]))
            if endpoint is not None:
                scope["app"] = self
                await _serve(endpoint, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


async def _serve(endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
    """Call `endpoint` and send its response, or the error answer FastAPI would send."""
    request = Request(scope, receive, send)
    try:
        response = await endpoint(request)
    except VeloxError as error:
        response = velox_error_response(request, error)
    except Exception:
        # What Starlette's ServerErrorMiddleware does: a plain 500, then the error goes on to
        # the server, which logs it.
        await PlainTextResponse("Internal Server Error", 500)(scope, receive, send)
        raise
    await response(scope, receive, send)
