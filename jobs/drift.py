"""Drift trigger: the served model's rolling online error against its validation error.

Velox's paper retrains when the online error of the served model grows past what validation
promised. The service keeps, per model, snapshot version and log partition, the count `n`
and the sum `se` of squared errors `(reward - predicted score)²` of every applied /observe,
the prediction being the user's posterior mean score just before the update (a hash per
partition, `online_error_key`, updated by the observe script itself: no extra round trip,
no hot key). The monitor sums the partitions' counters and takes differences over a trailing
window, so the rolling RMSE needs no per-event state: sqrt(Δse / Δn) over the last `window_s`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from batch.drain import EVENTS
from batch.redis_client import SyncRedis


def online_error_key(model: str, partition: int, version: int) -> str:
    """The hash {n, se} of one version's online squared errors in one log partition (written
    by the service, `online.redis_keys.online_error_key`)."""
    return f"velox:{{{model}|p{partition}}}:online_error:v{version}"


def online_error(client: SyncRedis, model: str, version: int) -> tuple[int, float]:
    """The version's count and sum of squared errors so far, over every log partition."""
    pipe = client.pipeline(transaction=False)
    for partition in range(EVENTS.partitions):
        pipe.hmget(online_error_key(model, partition, version), ["n", "se"])
    pairs = pipe.execute()
    return sum(int(n or 0) for n, _ in pairs), sum(float(se or 0.0) for _, se in pairs)


@dataclass(frozen=True)
class DriftReading:
    """One check: the rolling online RMSE (None: too few events yet) against validation."""

    version: int
    online_rmse: float | None
    validation_rmse: float | None
    events: int
    drifted: bool


@dataclass(frozen=True)
class _Sample:
    at: float
    n: int
    se: float


class DriftMonitor:
    """Rolling online RMSE of one model's served version; drifted past `threshold`.

    `threshold` is relative: drift when online RMSE > validation RMSE * (1 + threshold),
    measured over at least `min_events` observations of the last `window_s` seconds.
    """

    def __init__(
        self,
        client: SyncRedis,
        model: str,
        *,
        threshold: float,
        window_s: float = 900.0,
        min_events: int = 200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.model = model
        self.threshold = threshold
        self.window_s = window_s
        self.min_events = min_events
        self.clock = clock
        self._version: int | None = None
        self._samples: deque[_Sample] = deque()

    def read(self, version: int, validation_rmse: float | None) -> DriftReading:
        """Sample the counters of `version` and compare the window's RMSE with validation."""
        if version != self._version:
            self._version = version
            self._samples.clear()
        n, se = online_error(self.client, self.model, version)
        now = self.clock()
        self._samples.append(_Sample(now, n, se))
        while len(self._samples) > 2 and self._samples[1].at <= now - self.window_s:
            self._samples.popleft()
        first, last = self._samples[0], self._samples[-1]
        events = last.n - first.n
        rmse = (
            math.sqrt(max(last.se - first.se, 0.0) / events) if events >= self.min_events else None
        )
        drifted = (
            rmse is not None
            and validation_rmse is not None
            and rmse > validation_rmse * (1.0 + self.threshold)
        )
        return DriftReading(version, rmse, validation_rmse, events, drifted)
