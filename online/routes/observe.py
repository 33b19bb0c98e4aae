"""`POST /observe`."""

from __future__ import annotations

from fastapi import APIRouter, Response

from online import feedback
from online.deps import ObserveBodyDep, ServiceDep, openapi_body
from online.schemas import ObserveRequest, ObserveResponse, json_response

router = APIRouter(tags=["observe"])


@router.post("/observe", response_model=ObserveResponse, openapi_extra=openapi_body(ObserveRequest))
async def observe(service: ServiceDep, body: ObserveBodyDep) -> Response:
    """Log one reward durably and fold it into the user's posterior before answering."""
    return json_response(await feedback.observe(service, body))
