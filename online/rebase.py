"""Rebase: a user's posterior under a snapshot version is that version's prior plus exactly
the user's logged events after the version's training cutoff.

The invariant, kept by the weight store for every (user, version) state: the state equals the
version's prior (batch-trained w0 of the user, or the population prior) updated with the
user's events in the feedback log after the version's cutoff in the user's log partition,
up to the state's `applied` log id. Training saw every event up to the cutoff (the drain
records it per partition, `feature_store.log_cutoff`), so nothing is counted twice, and the
events after it are replayed, so nothing is lost.

A state is current when `applied` is the user's last log id (the `recent` list's tail); a
user without a state under the version needs none while the user's last event is at or
before the cutoff. Otherwise the user is rebased on first touch:

* /predict reads the state, `applied` and the tail in its one round trip; a user that needs
  a rebase costs one more (catch_up.lua returns the base state and the missing events
  together), the events are replayed here with `UserPosterior.update`, and the result is
  stored back with a compare-and-set that is not waited for. A /predict only ever rebases
  its own user.
* /observe does the same inside its compare-and-set loop (the store hands the update the
  missing events), so the new event lands on a rebased state.

The same mechanism keeps rollback exact: while a newer version served, events went into its
states only; when the old version serves again, its states' `applied` ids lag behind the
users' tails, and the events in between are replayed onto them. It replays what the user's
`recent` list still holds (the last `recent_events` events) and what the log still holds:
the drain keeps every entry after the cutoffs of the versions that may serve again
(`jobs.retrain`).
"""

from __future__ import annotations

from collections.abc import Sequence

from online.served_model import ServedModel
from online.service import Service
from online.weight_store import LoggedEvent, UserRead
from velox.posterior import UserPosterior
from velox.state_codec import decode_state, encode_state


def replay(
    served: ServedModel,
    posterior: UserPosterior,
    events: Sequence[LoggedEvent],
    reward_range: tuple[float, float],
) -> int:
    """Update `posterior` with `events` in log order; returns how many were replayed.

    An event on an item this version's catalog does not have cannot be replayed (it has no
    features here) and is skipped; so is one whose reward is outside `reward_range` (only an
    event logged before the range was checked can be), as training skips it.
    """
    index = served.snapshot.item_index
    features = served.snapshot.items.features
    low, high = reward_range
    replayed = 0
    for logged in events:
        row = index.get(logged.event.item)
        reward = logged.event.reward
        if row is not None and low <= reward <= high:  # False for NaN too
            posterior.update(features[row], reward)
            replayed += 1
    return replayed


async def posterior_for(
    service: Service, served: ServedModel, user: str, read: UserRead
) -> UserPosterior:
    """The user's posterior under `served` for /predict: the stored one if current, else
    rebased now (one more round trip) and stored back without waiting."""
    cutoff = served.cutoff_for(user)
    if read.is_current(cutoff):
        return served.posterior(user, read.state)
    caught = await service.store.catch_up(served.name, served.version, user, cutoff)
    if caught.state is not None:
        posterior = decode_state(caught.state)
    else:
        posterior = served.prior(user).copy()
    replayed = replay(served, posterior, caught.events, service.settings.reward_range())
    service.store.save_rebased(served.name, served.version, user, caught, encode_state(posterior))
    service.metrics.rebases.labels(served.name, "predict").inc()
    service.metrics.replayed_events.labels(served.name).inc(replayed)
    return posterior
