"""`GET /predict`: top-k with exploration and propensities, or one item's score and std."""

from __future__ import annotations

import os
import time

import numpy as np
from numpy.typing import NDArray

from online.rebase import posterior_for
from online.schemas import PredictQuery, PredictResponse, RankedItem, ScoreResponse
from online.served_model import ServedModel
from online.service import Service
from online.weight_store import Decision
from velox.policies import Policy
from velox.posterior import UserPosterior
from velox.scoring import score_rows


async def predict(service: Service, query: PredictQuery) -> PredictResponse | ScoreResponse:
    """Answer one /predict with one Redis round trip and one snapshot version throughout."""
    served = service.models.get(query.model)  # the one reference this request uses
    if query.item is not None:
        row = served.row_of(query.item)
        read = await service.store.read(served.name, served.version, query.user, with_seen=False)
        return _score(served, await posterior_for(service, served, query.user, read), query, row)
    read = await service.store.read(
        served.name, served.version, query.user, with_seen=query.exclude_seen
    )
    snapshot = served.snapshot
    allowed = snapshot.filters.mask(query.where) if query.where is not None else None
    exclude = served.rows_of(read.seen) if read.seen else None
    policy = _policy(service, served, query)
    posterior = await posterior_for(service, served, query.user, read)
    if served.cascade is None:
        request = policy.request(
            snapshot.items, posterior, query.k, allowed=allowed, exclude=exclude
        )
        selection = await service.selections.select(policy, snapshot.items, request)
        candidates, source = _eligible_count(snapshot.items.n, allowed, exclude), "exact"
    else:
        selection, found = served.cascade.select(
            policy, posterior, query.k, allowed, exclude, explore=query.explore
        )
        candidates, source = int(found.rows.size), found.source
    prediction_id = os.urandom(16).hex()
    ids = served.item_ids
    names = [ids[row] for row in selection.items.tolist()]
    propensities = selection.propensities.tolist()
    decision = Decision(
        prediction_id=prediction_id,
        user=query.user,
        version=served.version,
        policy=policy.spec,
        timestamp_us=time.time_ns() // 1000,
        items=names,
        propensities=propensities,
        candidates=candidates,
        source=source,
        window_s=served.rewards.window_s,
        default_reward=served.rewards.default_reward,
    )
    service.store.log_decision(served.name, decision)
    service.metrics.labelled(service.metrics.predictions, served.name).inc()
    items: list[RankedItem] = [
        {"item": name, "score": score, "propensity": propensity}  # a literal: no dict() call
        for name, score, propensity in zip(
            names, selection.scores.tolist(), propensities, strict=True
        )
    ]
    return PredictResponse(
        user=query.user,
        model=served.name,
        version=served.version,
        prediction_id=prediction_id,
        items=items,
    )


def _eligible_count(
    n_items: int, allowed: NDArray[np.bool_] | None, exclude: NDArray[np.intp] | None
) -> int:
    """How many items a policy could choose from (no work without a filter or exclusions)."""
    if exclude is None or exclude.size == 0:
        return n_items if allowed is None else int(np.count_nonzero(allowed))
    eligible = np.ones(n_items, dtype=np.bool_) if allowed is None else allowed.copy()
    eligible[exclude] = False
    return int(np.count_nonzero(eligible))


def _policy(service: Service, served: ServedModel, query: PredictQuery) -> Policy:
    if not query.explore:
        return service.policies.get("greedy")
    if query.policy is not None:
        return service.policies.get(query.policy, served.thompson_scale)
    return served.policy


def _score(
    served: ServedModel, posterior: UserPosterior, query: PredictQuery, row: int
) -> ScoreResponse:
    items = served.snapshot.items
    rows = np.array([row], dtype=np.intp)
    return ScoreResponse(
        user=query.user,
        item=served.item_ids[row],
        model=served.name,
        score=float(score_rows(items, posterior.mean(), rows)[0]),
        std=float(posterior.std(items.features[rows])[0]),
        version=served.version,
    )
