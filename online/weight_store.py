"""The weight store role: per-(model, version, user) posterior state plus the feedback log.

One abstract base, one module per backend (`redis_store.py`), each backend configured by a
typed config whose `type` field picks it (`open_store`). The store moves bytes: the service
hands `observe` a pure function from the old encoded state (None for a user never seen) to
the new one, and the store applies it atomically per user, retrying on conflicts with its
injected retry policy, so that concurrent observations give exactly the sequential result.

A state under snapshot version V always equals V's prior plus the user's logged events after
V's training cutoff up to the state's `applied` log id. When the user's log has moved past
that (events applied under another version, or a first touch after a retrain), `observe`
hands the update the missed events too, and `catch_up` reads them for /predict
(online/rebase.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal, NamedTuple

from pydantic import BaseModel, Field

from feature_store.log_cutoff import LOG_START, LogId


@dataclass(frozen=True)
class FeedbackEvent:
    """One observation as it is written to the feedback log (docs/events_schema.md)."""

    event_id: str
    user: str
    item: str
    reward: float
    timestamp_us: int
    prediction_id: str | None = None
    default_propensity: float | None = None
    """Set only on a default reward (applied when a reward window closed): the propensity the
    answer showed the item with. The store then applies it only if the item got no reward."""

    @property
    def is_default(self) -> bool:
        """True for a default reward."""
        return self.default_propensity is not None


class ObserveStatus(Enum):
    """What `observe` did."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    REWARDED = "rewarded"
    """A default reward that was not applied: the item got a reward in its window."""


@dataclass(frozen=True)
class ObserveOutcome:
    """The result of `observe`: applied (with its log id and new state) or a duplicate."""

    status: ObserveStatus
    log_id: str | None = None
    state: bytes | None = None
    propensity: float | None = None
    attempts: int = 1


DEFAULT_REWARD_WINDOW_S = 600
"""How long a reward joins its answer unless configured: 10 minutes, Azure Personalizer's
default reward wait time. Each answer's record (`shown:<prediction_id>`, about 400 bytes in
Redis for k = 10) lives that long, so the window sets the memory those records take: at 1,000
answers a second, ~0.24 GB for 10 minutes against ~35 GB for a day (the decision stream is
capped apart, by `decision_log_maxlen`). A later reward is still learned from, without its
propensity."""


class Decision(NamedTuple):
    """One /predict answer as the decision log keeps it: items in slot order, propensities.

    A NamedTuple rather than a frozen dataclass: one is built per /predict, and a frozen
    dataclass's __init__ (object.__setattr__ per field) cost 3.1 µs against 0.7 µs.
    """

    prediction_id: str
    user: str
    version: int
    policy: str
    timestamp_us: int
    items: Sequence[str]
    propensities: Sequence[float]
    candidates: int = 0
    """How many items the policy could choose from (after `where` and `exclude_seen`)."""
    window_s: int = DEFAULT_REWARD_WINDOW_S
    """How long a reward joins this answer."""
    default_reward: float | None = None
    """Given to each shown item that got no reward when the window closes (None: nothing)."""
    source: str = "exact"
    """Where the candidates came from: `exact` (the whole catalog) or the cascade's path."""


@dataclass(frozen=True)
class DueReward:
    """An answer whose reward window has closed and whose default rewards are still owed."""

    token: bytes
    """Identifies the pending entry, for `settle_reward`."""
    prediction_id: str
    user: str
    items: Sequence[str]
    propensities: Sequence[float]
    default_reward: float


@dataclass(frozen=True)
class UserRead:
    """What /predict needs of a user: the encoded state (None: never seen) and seen items.

    `applied` is the log id of the last event the state includes, `last` the log id of the
    user's last event under any version (None: no state, or no event).
    """

    state: bytes | None
    seen: Sequence[bytes] = ()
    applied: str | None = None
    last: str | None = None

    def is_current(self, cutoff: LogId) -> bool:
        """True if the state (or the prior, without one) includes every event it must.

        `cutoff` is the version's training cutoff in the user's log partition: the prior
        includes the events up to it, a state the events up to `applied`.
        """
        if self.last is None:
            return True
        if self.state is not None:
            return self.applied == self.last
        return LogId.parse(self.last) <= cutoff


@dataclass(frozen=True)
class LoggedEvent:
    """One event of a user read back from the feedback log, with its log position."""

    log_id: str
    event: FeedbackEvent
    propensity: float | None


class RedisStoreConfig(BaseModel):
    """Configuration of the Redis backend (`redis_store.RedisWeightStore`)."""

    type: Literal["redis"] = "redis"
    url: str
    timeout_s: float = Field(default=2.0, gt=0.0)
    dedupe_window: int = Field(default=10_000, ge=1)
    recent_events: int = Field(default=1000, ge=1)
    decision_log_maxlen: int = Field(default=100_000, ge=0)
    retries: int = Field(default=8, ge=0)
    wait_replicas: int = Field(default=0, ge=0)
    """Replicas that must hold an /observe before it is acknowledged (Redis `WAIT`; 0: off)."""
    wait_timeout_ms: int = Field(default=100, ge=1)


StoreConfig = RedisStoreConfig
"""Union of every backend's config; the `type` field tells them apart."""


@dataclass(frozen=True)
class StateChange:
    """What an update returns: the new encoded state and the squared error of the reward
    against the score the old state predicted (None: not measured), for drift monitoring."""

    state: bytes
    squared_error: float | None = None


StateUpdate = Callable[[bytes | None, Sequence[LoggedEvent]], StateChange]
"""(Old encoded state or None for none under this version, the user's logged events that state
does not include yet, in log order) -> the change to store."""


@dataclass(frozen=True)
class CatchUp:
    """A state and the user's logged events it lacks, read together (the read of a rebase).

    `state` is None when the user has none under the version (the prior is the base then);
    `token` identifies what was read, for `save_rebased`'s compare-and-set; `missing` counts
    events listed for the user but already trimmed from the log.
    """

    state: bytes | None
    events: list[LoggedEvent]
    token: tuple[bytes, str]
    missing: int = 0


class WeightStore(ABC):
    """Per-user posterior states and the durable feedback log, behind one interface."""

    @abstractmethod
    async def read(self, model: str, version: int, user: str, *, with_seen: bool) -> UserRead:
        """The user's state under `version` and, if asked, the items it has observed."""

    @abstractmethod
    async def observe(
        self,
        model: str,
        version: int,
        event: FeedbackEvent,
        update: StateUpdate,
        *,
        cutoff: LogId = LOG_START,
        window_s: int | None = None,
    ) -> ObserveOutcome:
        """Append `event` to the log and apply `update` to the user's state, atomically.

        `cutoff` is the version's training cutoff in the user's log partition: without a
        state, the update is handed the user's logged events after it. `window_s`, the
        reward window of a model with a default reward, makes the store remember that the
        event's item got a reward, so that no default reward is applied to it.
        """

    @abstractmethod
    async def catch_up(self, model: str, version: int, user: str, cutoff: LogId) -> CatchUp:
        """The user's state under `version` and the logged events it lacks (one round trip)."""

    @abstractmethod
    def save_rebased(
        self, model: str, version: int, user: str, read: CatchUp, state: bytes
    ) -> None:
        """Store `state` (read's base plus its events) unless the user moved on; no waiting."""

    @abstractmethod
    def log_decision(self, model: str, decision: Decision) -> None:
        """Append a /predict answer to the decision log and remember its propensities for
        /observe (best effort: sent without waiting)."""

    @abstractmethod
    async def due_rewards(self, model: str, now_ms: int, limit: int) -> list[DueReward]:
        """Answers of `model` whose reward window closed by `now_ms` with defaults owed."""

    @abstractmethod
    async def settle_reward(self, model: str, due: DueReward) -> None:
        """Forget a due answer once its default rewards are applied (idempotent)."""

    @abstractmethod
    async def recent_events(self, model: str, user: str) -> list[LoggedEvent]:
        """The user's last events in log order (for replaying them onto a new snapshot)."""

    @abstractmethod
    async def ping(self) -> bool:
        """True if the store answers."""

    async def unavailable(self) -> str | None:
        """None if the store serves, else one line saying why not (for /readyz)."""
        return None if await self.ping() else "the weight store does not answer"

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""


def open_store(config: StoreConfig) -> WeightStore:
    """The backend that `config.type` names."""
    if config.type == "redis":
        from online.redis_store import RedisWeightStore

        return RedisWeightStore(config)
    raise AssertionError(f"unknown weight store type {config.type!r}")
