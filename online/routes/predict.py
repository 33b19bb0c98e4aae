"""`GET /predict`."""

from __future__ import annotations

from fastapi import APIRouter, Response

from online import predictor
from online.deps import PredictQueryDep, ServiceDep, openapi_query
from online.schemas import PredictQuery, PredictResponse, ScoreResponse, json_response

router = APIRouter(tags=["predict"])


@router.get(
    "/predict",
    response_model=PredictResponse | ScoreResponse,
    openapi_extra=openapi_query(PredictQuery),
)
async def predict(service: ServiceDep, query: PredictQueryDep) -> Response:
    """Top-k items for `user` (with exploration and propensities), or one `item`'s score."""
    return json_response(await predictor.predict(service, query))
