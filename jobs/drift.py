"""Drift trigger: the served model's rolling online error against its validation error.

Velox's paper retrains when the online error of the served model grows past what validation
promised. The service keeps, per model and snapshot version, the count `n` and the sum `se`
of squared errors `(reward - predicted score)²` of every applied /observe, the prediction
being the user's posterior mean score just before the update (hash `online_error_key`). The
monitor samples those two counters and takes differences over a trailing window, so the
rolling RMSE needs no per-event state anywhere: sqrt(Δse / Δn) over the last `window_s`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import redis


def online_error_key(model: str, version: int) -> str:
    """The hash {n, se} of online squared errors of one snapshot version (written online)."""
    return f"velox:{{{model}}}:online_error:v{version}"


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
        client: redis.Redis,
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
        n, se = self.client.hmget(online_error_key(self.model, version), ["n", "se"])
        now = self.clock()
        self._samples.append(_Sample(now, int(n or 0), float(se or 0.0)))
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
