"""`POST /observe`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from online import feedback
from online.deps import observe_body, openapi_body, service_of
from online.errors import error_responses
from online.schemas import ObserveRequest, ObserveResponse, json_response

router = APIRouter(tags=["observe"])


@router.post(
    "/observe",
    response_model=ObserveResponse,
    openapi_extra=openapi_body(ObserveRequest),
    responses=error_responses(400, 404, 413, 422, 503),
)
async def observe(request: Request) -> Response:
    """Log one reward durably and fold it into the user's posterior before answering."""
    service = service_of(request)
    body = await observe_body(request, service.settings.max_body_bytes)
    return json_response(await feedback.observe(service, body))
