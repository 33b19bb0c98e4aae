"""`GET /healthz` (the process is up) and `GET /readyz` (it can serve)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from online.deps import ServiceDep
from online.schemas import StatusResponse, json_response

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=StatusResponse)
async def healthz() -> Response:
    """Always 200 while the process answers."""
    return json_response(StatusResponse(status="ok", detail="up"))


@router.get("/readyz", response_model=StatusResponse, responses={503: {"model": StatusResponse}})
async def readyz(service: ServiceDep) -> Response:
    """200 when a snapshot is loaded and Redis answers, else 503 saying what is missing."""
    served = service.models.models
    if not served:
        detail = f"no snapshot loaded yet (model {service.models.default_name!r})"
        return json_response(StatusResponse(status="unavailable", detail=detail), 503)
    problem = await service.store.unavailable()
    if problem is not None:
        return json_response(StatusResponse(status="unavailable", detail=problem), 503)
    detail = ", ".join(f"{name} v{model.version}" for name, model in sorted(served.items()))
    return json_response(StatusResponse(status="ok", detail=detail))
