"""`GET /recommendations`: answers from the score table (engine calls run in a thread pool)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from feature_store.score_tables.engine import ScoreEngine
from online.deps import ServiceDep
from online.recommendations import RecommendationsQuery, RecommendationsResponse, recommend
from online.schemas import json_response

router = APIRouter(tags=["recommendations"])


async def get_scores(request: Request) -> ScoreEngine:
    """The app's score engine (opened by the lifespan)."""
    engine: ScoreEngine = request.app.state.scores
    return engine


ScoresDep = Annotated[ScoreEngine, Depends(get_scores)]


@router.get("/recommendations", response_model=RecommendationsResponse)
async def recommendations(
    service: ServiceDep, scores: ScoresDep, query: Annotated[RecommendationsQuery, Query()]
) -> Response:
    """A user's top-k from the score table; `fresh=true` re-ranks it with the current weights."""
    return json_response(await recommend(service, scores, query))
