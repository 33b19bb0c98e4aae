"""Planted feedback-log entries, appended the way the service appends them (XADD per partition)."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow.dataset as ds
import redis

from online.redis_keys import UserKeys

DAY_US = 86_400_000_000
BASE_US = 1_732_320_000_000_000  # 2024-11-23T00:00:00Z


@dataclass(frozen=True)
class PlantedEvent:
    """One event to log: its id, user, item, reward and epoch-microsecond time."""

    event_id: str
    user: str
    item: str
    reward: float
    timestamp_us: int


def planted_events(
    count: int, start: int = 0, users: int = 37, days: int = 3
) -> list[PlantedEvent]:
    """`count` events numbered from `start`, spread over `users` users and `days` UTC days."""
    return [
        PlantedEvent(
            event_id=f"e{n}",
            user=f"u{n % users}",
            item=f"i{n % 11}",
            reward=float(n % 5) - 1.5,
            timestamp_us=BASE_US + (n % days) * DAY_US + n,
        )
        for n in range(start, start + count)
    ]


def log_events(client: redis.Redis, model: str, events: list[PlantedEvent]) -> list[str]:
    """XADD each event to its user's partition of `model`'s log; returns the stream ids."""
    ids = []
    for event in events:
        fields = {
            "event_id": event.event_id,
            "user_id": event.user,
            "item_id": event.item,
            "reward": repr(event.reward),
            "timestamp": str(event.timestamp_us),
            "prediction_id": "",
            "propensity": "",
        }
        log_id = client.xadd(UserKeys.of(model, event.user).events, fields)  # type: ignore[arg-type]
        ids.append(log_id.decode() if isinstance(log_id, bytes) else str(log_id))
    return ids


def drained_event_ids(root: str) -> list[str]:
    """Every event id in the drained Parquet dataset under `root` (duplicates kept)."""
    dataset = ds.dataset(root, format="parquet", partitioning="hive")
    ids: list[str] = dataset.to_table(columns=["event_id"]).column("event_id").to_pylist()
    return ids
