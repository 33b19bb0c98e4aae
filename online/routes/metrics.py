"""`GET /metrics` (Prometheus text format, this worker's counters)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from online.deps import ServiceDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
async def metrics(service: ServiceDep) -> Response:
    """Predictions, observations by outcome, CAS attempts, errors, served versions."""
    return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)
