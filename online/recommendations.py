"""`GET /recommendations`: a user's top-k from the score table, completed online when needed.

The table answers with no model in the loop. `fresh=true` re-ranks the user's materialized
rows with the user's current posterior mean (one Redis read, as /predict does), so feedback
since the table was built shows. When the table cannot give the exact answer (the user is not
in it, or the filter leaves fewer than k of the user's top-N rows) the online path, /predict's
greedy top-k with the same `where`, answers instead, and `source` says so.
"""

from __future__ import annotations

from typing import Annotated, Literal, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool
from typing_extensions import TypedDict

from feature_store.score_tables import ScoreTableNotFoundError
from feature_store.score_tables.engine import ScoreEngine, TableAnswer
from online import predictor
from online.rebase import posterior_for
from online.schemas import MAX_K, Id, PredictQuery, PredictResponse
from online.service import Service
from velox.scoring import score_rows

FRESH_MAX_ROWS = 5000
"""At most this many of the user's materialized rows are re-ranked by `fresh=true`."""


class RecommendationsQuery(BaseModel):
    """Query of `GET /recommendations`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: Id
    k: int = Field(default=10, ge=1, le=MAX_K)
    where: Annotated[str, StringConstraints(max_length=2000)] | None = None
    model: Id | None = None
    fresh: bool = False


class RecommendedItem(TypedDict):
    """One recommended item and its score."""

    item: str
    score: float


class RecommendationsResponse(TypedDict):
    """Answer of `GET /recommendations`.

    `table_version` is the score table consulted (None if the model has none);
    `snapshot_version` the snapshot whose features scored the items (the table's, or the
    served one for `fresh` and `online` answers); `complete` whether the items are the exact
    top-k of the source (false only for a table answer that could not be completed).
    """

    user: str
    model: str
    table_version: int | None
    snapshot_version: int
    source: Literal["table", "online"]
    fresh: bool
    complete: bool
    items: list[RecommendedItem]


def _from_table(query: RecommendationsQuery, answer: TableAnswer) -> RecommendationsResponse:
    return RecommendationsResponse(
        user=query.user,
        model=answer.model,
        table_version=answer.table_version,
        snapshot_version=answer.snapshot_version,
        source="table",
        fresh=False,
        complete=answer.complete,
        items=[{"item": row.item, "score": row.score} for row in answer.rows],
    )


async def _online(
    service: Service, query: RecommendationsQuery, model: str, table_version: int | None
) -> RecommendationsResponse:
    greedy = PredictQuery(user=query.user, k=query.k, model=model, where=query.where, explore=False)
    # A query without `item` is answered with a top-k, never with one item's score.
    answer = cast(PredictResponse, await predictor.predict(service, greedy))
    return RecommendationsResponse(
        user=query.user,
        model=model,
        table_version=table_version,
        snapshot_version=answer["version"],
        source="online",
        fresh=query.fresh,
        complete=True,
        items=[{"item": item["item"], "score": item["score"]} for item in answer["items"]],
    )


async def _fresh(
    service: Service, query: RecommendationsQuery, answer: TableAnswer
) -> RecommendationsResponse | None:
    """The table rows re-ranked with the current posterior mean; None if fewer than k."""
    served = service.models.get(answer.model)
    index = served.snapshot.item_index
    rows = np.array([index[r.item] for r in answer.rows if r.item in index], dtype=np.intp)
    read = await service.store.read(served.name, served.version, query.user, with_seen=False)
    posterior = await posterior_for(service, served, query.user, read)
    scores = score_rows(served.snapshot.items, posterior.mean(), rows).tolist()
    ids = served.item_ids
    ranked = sorted(zip(scores, rows.tolist(), strict=True), key=lambda p: (-p[0], ids[p[1]]))
    if len(ranked) < query.k and not answer.complete:
        return None
    return RecommendationsResponse(
        user=query.user,
        model=answer.model,
        table_version=answer.table_version,
        snapshot_version=served.version,
        source="table",
        fresh=True,
        complete=True,
        items=[{"item": ids[row], "score": score} for score, row in ranked[: query.k]],
    )


async def recommend(
    service: Service, engine: ScoreEngine, query: RecommendationsQuery
) -> RecommendationsResponse:
    """Answer from the table (re-ranked if `fresh`), else online; 404 for an unknown model."""
    model = query.model or service.models.get(None).name
    wanted = FRESH_MAX_ROWS if query.fresh else query.k
    try:
        answer = await run_in_threadpool(engine.top_k, model, query.user, wanted, query.where)
    except ScoreTableNotFoundError:
        if model not in service.models.models:
            raise ScoreTableNotFoundError(
                f"model {model!r} has no score table and is not served"
            ) from None
        return await _online(service, query, model, None)
    if answer.user_known and query.fresh:
        fresh = await _fresh(service, query, answer)
        if fresh is not None:
            return fresh
    elif answer.complete:  # k rows, or every matching item of a known user
        return _from_table(query, answer)
    return await _online(service, query, model, answer.table_version)
