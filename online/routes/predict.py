"""`GET /predict`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from online import predictor
from online.deps import openapi_query, predict_query, service_of
from online.errors import error_responses
from online.schemas import PredictQuery, PredictResponse, ScoreResponse, json_response

router = APIRouter(tags=["predict"])


@router.get(
    "/predict",
    response_model=PredictResponse | ScoreResponse,
    openapi_extra=openapi_query(PredictQuery),
    responses=error_responses(400, 404, 422, 503),
)
async def predict(request: Request) -> Response:
    """Top-k items for `user` (with exploration and propensities), or one `item`'s score."""
    return json_response(await predictor.predict(service_of(request), predict_query(request)))
