"""The bookkeeping of one /observe in the Redis weight store, across its CAS retries."""

from __future__ import annotations

import orjson

from feature_store.log_cutoff import LogId
from online.weight_store import FeedbackEvent, LoggedEvent, ObserveOutcome, ObserveStatus


class ObserveAttempt:
    """The mutable state of one observe across CAS retries."""

    __slots__ = (
        "applied",
        "current",
        "cutoff",
        "last",
        "maybe_applied",
        "missed",
        "propensity",
        "read_done",
        "script_sent",
        "tries",
    )

    def __init__(self, cutoff: LogId) -> None:
        """A first attempt: nothing read or sent yet."""
        self.cutoff = cutoff
        self.read_done = False
        self.current: bytes | None = None
        self.applied: str | None = None
        self.last: str | None = None
        self.missed: list[LoggedEvent] | None = None
        self.propensity: float | None = None
        self.script_sent = False
        self.maybe_applied = False
        self.tries = 0

    def seen_before(self) -> ObserveOutcome:
        """The event id is already recorded: ours if a script of this call may have run."""
        if self.maybe_applied:
            return ObserveOutcome(
                ObserveStatus.APPLIED, propensity=self.propensity, attempts=self.tries
            )
        return ObserveOutcome(ObserveStatus.DUPLICATE, attempts=self.tries)


def join_kind(event: FeedbackEvent, propensity: float | None) -> str:
    """How the event joins its answer: a default reward, a reward in the window, or neither."""
    if event.is_default:
        return "default"
    return "joined" if propensity is not None else ""


def shown_propensity(shown: bytes | None, item: str) -> float | None:
    """The propensity of `item` in a stored `/predict` answer (None: expired or not shown)."""
    if shown is None:
        return None
    propensity = orjson.loads(shown).get(item)
    return float(propensity) if propensity is not None else None
