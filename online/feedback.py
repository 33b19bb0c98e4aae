"""`POST /observe`: log the event and apply the closed-form update to the user's posterior."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from online import rebase
from online.errors import UnprocessableError
from online.schemas import ObserveRequest, ObserveResponse
from online.served_model import ServedModel
from online.service import Service
from online.weight_store import (
    FeedbackEvent,
    LoggedEvent,
    ObserveOutcome,
    ObserveStatus,
    StateChange,
)
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
    """Check the reward's range and validate against the snapshot (nothing is written before),
    then log + update atomically in the weight store.

    The squared error of the score predicted just before the update feeds the drift monitor
    of the scheduler (`jobs.drift`). A reward whose `prediction_id` is unknown, expired (its
    reward window closed) or did not show the item is still learned from, without a
    propensity, and the answer says so.
    """
    settings = service.settings
    if not settings.reward_min <= request.reward <= settings.reward_max:
        raise UnprocessableError(
            f"reward {request.reward:g} is outside the accepted range [{settings.reward_min:g}, "
            f"{settings.reward_max:g}] (VELOX_REWARD_MIN, VELOX_REWARD_MAX)"
        )
    served = service.models.get(request.model)
    event, outcome = await apply(service, served, request)
    joined = None
    note = None
    if request.prediction_id and outcome.status is ObserveStatus.APPLIED:
        joined = outcome.propensity is not None
        if not joined:
            note = (
                f"prediction_id {request.prediction_id!r} is unknown, its reward window has "
                f"closed, or it did not show item {request.item!r}: the reward was learned "
                "from without a propensity"
            )
    return ObserveResponse(
        user=request.user,
        item=request.item,
        model=served.name,
        version=served.version,
        event_id=event.event_id,
        duplicate=outcome.status is ObserveStatus.DUPLICATE,
        log_id=outcome.log_id,
        joined=joined,
        propensity=outcome.propensity,
        note=note,
    )


async def apply(
    service: Service,
    served: ServedModel,
    request: ObserveRequest,
    *,
    default_propensity: float | None = None,
) -> tuple[FeedbackEvent, ObserveOutcome]:
    """Apply one reward to the user's posterior under `served` and log it (one code path for
    /observe and for default rewards, which pass the propensity their answer showed)."""
    x = served.snapshot.items.features[served.row_of(request.item)]
    user, reward = request.user, request.reward

    def update(state: bytes | None, missed: Sequence[LoggedEvent]) -> StateChange:
        posterior = decode_state(state) if state is not None else served.prior(user).copy()
        if missed:
            replayed = rebase.replay(served, posterior, missed, service.settings.reward_range())
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
        default_propensity=default_propensity,
    )
    rewards = served.rewards
    outcome = await service.store.observe(
        served.name,
        served.version,
        event,
        update,
        cutoff=served.cutoff_for(user),
        window_s=rewards.window_s if rewards.default_reward is not None else None,
    )
    metrics = service.metrics
    metrics.labelled(metrics.observations, served.name, outcome.status.value).inc()
    metrics.labelled(metrics.cas_attempts, served.name).inc(outcome.attempts)
    return event, outcome
