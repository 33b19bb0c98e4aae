"""`POST /observe`: log the event and apply the closed-form update to the user's posterior."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from online import rebase
from online.schemas import ObserveRequest, ObserveResponse
from online.service import Service
from online.weight_store import FeedbackEvent, LoggedEvent, ObserveStatus, StateChange
from velox.state_codec import decode_state, encode_state

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_micros(timestamp: datetime | None) -> int:
    """Epoch microseconds of `timestamp` (naive means UTC), or of now when None."""
    if timestamp is None:
        return time.time_ns() // 1000
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    return (timestamp - EPOCH) // timedelta(microseconds=1)


async def observe(service: Service, request: ObserveRequest) -> ObserveResponse:
    """Validate against the snapshot, then log + update atomically in the weight store.

    The squared error of the score predicted just before the update feeds the drift monitor
    of the scheduler (`jobs.drift`).
    """
    served = service.models.get(request.model)
    x = served.snapshot.items.features[served.row_of(request.item)]
    user, reward = request.user, request.reward

    def update(state: bytes | None, missed: Sequence[LoggedEvent]) -> StateChange:
        posterior = decode_state(state) if state is not None else served.prior(user).copy()
        if missed:
            replayed = rebase.replay(served, posterior, missed)
            service.metrics.rebases.labels(served.name, "observe").inc()
            service.metrics.replayed_events.labels(served.name).inc(replayed)
        squared_error = (reward - float(x @ posterior.mean())) ** 2
        posterior.update(x, reward)
        return StateChange(encode_state(posterior), squared_error)

    event = FeedbackEvent(
        event_id=request.event_id or uuid.uuid4().hex,
        user=user,
        item=request.item,
        reward=reward,
        timestamp_us=epoch_micros(request.timestamp),
        prediction_id=request.prediction_id,
    )
    outcome = await service.store.observe(
        served.name, served.version, event, update, cutoff=served.cutoff_for(user)
    )
    metrics = service.metrics
    metrics.observations.labels(served.name, outcome.status.value).inc()
    metrics.cas_attempts.labels(served.name).inc(outcome.attempts)
    return ObserveResponse(
        user=user,
        item=request.item,
        model=served.name,
        version=served.version,
        event_id=event.event_id,
        duplicate=outcome.status is ObserveStatus.DUPLICATE,
        log_id=outcome.log_id,
    )
