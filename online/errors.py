"""Errors of the service, and the one handler that turns every Velox error into JSON.

    VeloxError (velox.errors)
    └── ServiceError (500)
        ├── PayloadTooLargeError (413)      a request body over `max_body_bytes`
        ├── BadRequestError (400)           a body or query that cannot be parsed
        ├── UnprocessableError (422)        well-formed input with an out-of-range value
        ├── NoSnapshotError (503)           the model has no loaded snapshot yet
        ├── StoreUnavailableError (503)     Redis cannot be reached (after retries)
        │   └── NotReplicatedError (503)    a write reached fewer replicas than required
        └── EmbeddedRedisError (500)        the embedded redis-server cannot be started

Errors from velox and feature_store (unknown item 404, malformed filter 400, ...) carry their
own status and go through the same handler, and so do the framework's own answers (unknown
path 404, wrong method 405): the body is always `{"error": message}`.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from velox.errors import VeloxError


class ServiceError(VeloxError):
    """Root of the service's own errors."""


class PayloadTooLargeError(ServiceError):
    """The request body is larger than the service accepts."""

    status = 413


class BadRequestError(ServiceError):
    """The request body or query cannot be parsed."""

    status = 400


class UnprocessableError(ServiceError):
    """The request parses but a value is out of range or of the wrong type."""

    status = 422


class NoSnapshotError(ServiceError):
    """The model is known but no snapshot of it is loaded (yet)."""

    status = 503


class StoreUnavailableError(ServiceError):
    """The weight store (Redis) did not answer, even after the retry policy's attempts."""

    status = 503


class NotReplicatedError(StoreUnavailableError):
    """A write reached the master but fewer replicas than `redis_wait_replicas` in time."""


class EmbeddedRedisError(ServiceError):
    """The embedded redis-server could not be started or stopped."""


def error_response(status: int, message: str) -> Response:
    """The JSON body every error gets: `{"error": message}`."""
    return Response(orjson.dumps({"error": message}), status, media_type="application/json")


def _counted(request: Request, status: int, message: str) -> Response:
    service = getattr(request.app.state, "service", None)
    if service is not None:
        service.metrics.errors.labels(str(status)).inc()
    return error_response(status, message)


def velox_error_response(request: Request, error: VeloxError) -> Response:
    """The counted JSON answer to a `VeloxError`: its status and `{"error": message}`."""
    return _counted(request, error.status, error.message)


async def _velox_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, VeloxError)
    return velox_error_response(request, error)


async def _validation_error(request: Request, error: Exception) -> Response:
    # FastAPI validates a few framework-level inputs itself; keep the same body shape.
    assert isinstance(error, RequestValidationError)
    message = "; ".join(str(item.get("msg", item)) for item in error.errors())
    return _counted(request, 422, message)


async def _http_error(request: Request, error: Exception) -> Response:
    # Starlette's own answers (unknown path 404, wrong method 405) get the same body shape.
    assert isinstance(error, StarletteHTTPException)
    response = _counted(request, error.status_code, str(error.detail))
    response.headers.update(error.headers or {})
    return response


def install_error_handlers(app: FastAPI) -> None:
    """Answer every `VeloxError`, validation error and unknown path with `{"error": message}`."""
    app.add_exception_handler(VeloxError, _velox_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: str


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route that may answer these error statuses."""
    return {
        status: {"model": ErrorBody, "description": ERROR_MEANINGS[status]} for status in statuses
    }


ERROR_MEANINGS = {
    400: "A body or query that cannot be parsed, or a filter that cannot be used",
    404: "An unknown item or model",
    413: "A request body over VELOX_MAX_BODY_BYTES",
    422: "A well-formed request with a value out of range or of the wrong type",
    503: "No snapshot loaded yet, or Redis unreachable",
}
