"""A load of /observe calls whose clients retry with the same event id until acknowledged, and
the audit of what Redis kept: acknowledged, lost, duplicated, and when errors stopped.

Used by the failover tests and by bench/bench_failover.py: the load runs while a Redis node is
killed; afterwards every acknowledged event id must be in the feedback log exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import cast

import httpx
import numpy as np

from batch.redis_client import SyncRedis
from online.redis_keys import LOG_PARTITIONS, events_key

Event = tuple[str, str, float]
"""(user, item, reward)."""

RETRY_SLEEP_S = 0.05


@dataclass
class LoadResult:
    """What the clients saw: acknowledged events by id, failed attempts and their times."""

    acknowledged: dict[str, Event] = field(default_factory=dict)
    failures: list[float] = field(default_factory=list)
    """Monotonic times at which attempts failed (an error status, or no answer)."""
    latencies_s: list[float] = field(default_factory=list)

    def failed(self, at: float) -> None:
        """Count an attempt that failed at monotonic time `at`."""
        self.failures.append(at)


def planned_events(users: int, per_user: int, items: int, seed: int) -> dict[str, Event]:
    """`users` x `per_user` events with distinct ids, random items and rewards."""
    rng = np.random.default_rng(seed)
    events: dict[str, Event] = {}
    for n in range(users * per_user):
        user = f"load-{seed}-{n % users}"
        events[f"ev-{seed}-{n}"] = (user, f"i{int(rng.integers(items))}", round(rng.normal(), 3))
    return events


async def run_load(
    url: str,
    events: dict[str, Event],
    result: LoadResult,
    *,
    concurrency: int = 8,
    deadline_s: float = 120.0,
) -> LoadResult:
    """Send every event (at most `concurrency` at once), each retried until a 200."""
    queue = list(events.items())
    stop_at = time.monotonic() + deadline_s
    async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:

        async def worker() -> None:
            while queue:
                event_id, (user, item, reward) = queue.pop()
                body = {"user": user, "item": item, "reward": reward, "event_id": event_id}
                while time.monotonic() < stop_at:
                    started = time.monotonic()
                    try:
                        answer = await client.post("/observe", json=body)
                    except httpx.TransportError:
                        answer = None
                    if answer is not None and answer.status_code == 200:
                        result.acknowledged[event_id] = (user, item, reward)
                        result.latencies_s.append(time.monotonic() - started)
                        break
                    result.failed(time.monotonic())
                    await asyncio.sleep(RETRY_SLEEP_S)

        await asyncio.gather(*[worker() for _ in range(concurrency)])
    return result


def logged_event_ids(client: SyncRedis, model: str) -> Counter[str]:
    """How often each event id appears in the model's feedback log (all partitions)."""
    counts: Counter[str] = Counter()
    for partition in range(LOG_PARTITIONS):
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]], client.xrange(events_key(model, partition))
        )
        counts.update(fields[b"event_id"].decode() for _, fields in entries)
    return counts


@dataclass(frozen=True)
class Audit:
    """Acknowledged events against the log: none lost, none twice, when service came back."""

    acknowledged: int
    lost: int
    duplicated: int
    failed_attempts: int
    """Failed attempts from the fault on (the retries it cost the clients)."""
    outage_s: float
    """From the fault to the last failed attempt: how long clients saw errors."""

    @classmethod
    def of(cls, result: LoadResult, logged: Counter[str], killed_at: float) -> Audit:
        """Compare what clients were told with what the log holds."""
        acked = result.acknowledged
        after = [at for at in result.failures if at >= killed_at]
        return cls(
            acknowledged=len(acked),
            lost=sum(1 for event_id in acked if logged[event_id] == 0),
            duplicated=sum(1 for event_id in acked if logged[event_id] > 1),
            failed_attempts=len(after),
            outage_s=max(after) - killed_at if after else 0.0,
        )
