"""`GET /models`."""

from __future__ import annotations

from fastapi import APIRouter, Response

from online.deps import ServiceDep
from online.schemas import ModelsResponse, json_response

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelsResponse)
async def models(service: ServiceDep) -> Response:
    """The served models, the snapshot version of each, and the default model."""
    current = service.models
    infos = [served.info() for _, served in sorted(current.models.items())]
    return json_response(ModelsResponse(default=current.default, models=infos))
