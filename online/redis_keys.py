"""The Redis key layout of the weight store and the feedback log (spec: docs/redis_layout.md).

Every key of one user carries the hash tag of the user's log partition,
`{<model>|p<partition>}`, with `partition = crc32(user) mod LOG_PARTITIONS`. So a user's state,
seen set, dedupe window, recent-events list and the partition of the feedback log the user's
events go to all live in one Redis Cluster slot, and one Lua script can update them atomically.
The user id always comes last but for a fixed suffix, which keeps keys of different users
distinct whatever characters the ids contain.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

LAYOUT_VERSION = 1
"""Bumped on any change below; keys of another layout are never read."""

KEYS_CACHE_SIZE = 16_384
"""Users whose keys stay built in memory (a few hundred bytes each)."""

LOG_PARTITIONS = 64
"""Partitions of the feedback log per model; fixed by the layout (changing it moves users)."""


def partition_of(user: str) -> int:
    """The log partition of a user (stable across processes and machines)."""
    return zlib.crc32(user.encode("utf-8")) % LOG_PARTITIONS


def partition_tag(model: str, partition: int) -> str:
    """The hash tag shared by every key of one partition of one model."""
    return f"{{{model}|p{partition}}}"


def events_key(model: str, partition: int) -> str:
    """The Redis Stream holding one partition of a model's feedback log."""
    return f"velox:{partition_tag(model, partition)}:events"


def decisions_key(model: str, partition: int) -> str:
    """The Redis Stream holding one partition of a model's decision log (/predict answers)."""
    return f"velox:{partition_tag(model, partition)}:decisions"


def pending_key(model: str, partition: int) -> str:
    """The sorted set of one partition's /predict answers still owed default rewards."""
    return f"velox:{partition_tag(model, partition)}:pending"


def online_error_key(model: str, partition: int, version: int) -> str:
    """Hash {n, se}: count and sum of squared /observe prediction errors of one version, for
    the users of one log partition (the drift monitor of `jobs.drift` sums the partitions)."""
    return f"velox:{partition_tag(model, partition)}:online_error:v{version}"


@dataclass(frozen=True)
class UserKeys:
    """Every key of one (model, user); `state(version)` is per snapshot version."""

    model: str
    user: str
    partition: int
    prefix: str

    @classmethod
    @lru_cache(maxsize=KEYS_CACHE_SIZE)
    def of(cls, model: str, user: str) -> UserKeys:
        """The keys of `user` under `model` (cached: every request of a user needs them)."""
        partition = partition_of(user)
        prefix = f"velox:{partition_tag(model, partition)}:u:{user}"
        return cls(model=model, user=user, partition=partition, prefix=prefix)

    def state(self, version: int) -> str:
        """The posterior state under snapshot `version` (CAS header + encoded state)."""
        return f"{self.prefix}:v{version}:state"

    def applied(self, version: int) -> str:
        """The log id of the last event that the state under snapshot `version` includes."""
        return f"{self.prefix}:v{version}:applied"

    @property
    def seen(self) -> str:
        """Set of the item ids the user has given feedback on (any version)."""
        return f"{self.prefix}:seen"

    @property
    def event_ids(self) -> str:
        """Sorted set of the user's last event ids, for idempotent /observe."""
        return f"{self.prefix}:eids"

    @property
    def recent(self) -> str:
        """List of the stream ids of the user's last events, for replay after a retrain."""
        return f"{self.prefix}:recent"

    @property
    def events(self) -> str:
        """The feedback-log partition the user's events are appended to."""
        return events_key(self.model, self.partition)

    @property
    def decisions(self) -> str:
        """The decision-log partition the user's /predict answers are appended to."""
        return decisions_key(self.model, self.partition)

    def prediction(self, prediction_id: str) -> str:
        """JSON object item id -> propensity of one /predict answer, read back by /observe."""
        return f"velox:{partition_tag(self.model, self.partition)}:shown:{prediction_id}"

    def rewarded(self, prediction_id: str) -> str:
        """Set of the items of one /predict answer that got a reward in its window."""
        return f"velox:{partition_tag(self.model, self.partition)}:rewarded:{prediction_id}"

    @property
    def replicated(self) -> str:
        """Counter of the partition written before a WAIT that confirms an earlier write."""
        return f"velox:{partition_tag(self.model, self.partition)}:replicated"

    @property
    def pending(self) -> str:
        """Sorted set of the partition's answers owed default rewards, by window close (ms)."""
        return pending_key(self.model, self.partition)
