"""Live traffic for the dashboard: requests/s and latency percentiles of the hot routes,
errors by status and the Redis round-trip time, over the last few minutes of one worker.

The hot routes skip FastAPI and its middleware (online/direct_routes.py), so `timed` wraps
their endpoint functions instead: two `perf_counter` calls and one deque append per request.
A sampler task (one per worker, once a second) swaps the deques out and reduces them to one
`TrafficTick` in a ring of `HISTORY_TICKS`; it also times a PING on the store's own
connection (the round trip a request sees) and reads the error counters of `ServiceMetrics`.
A dashboard request only reads the ring: it costs the hot paths nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import numpy as np
from fastapi import Request, Response
from numpy.typing import NDArray
from prometheus_client.parser import text_string_to_metric_families

from online.dashboard.schemas import ErrorCount, RouteSeries, RouteTraffic, TrafficResponse
from online.metrics import ServiceMetrics
from online.service import Service

Endpoint = Callable[[Request], Awaitable[Response]]

ROUTES = {("GET", "/predict"): "/predict", ("POST", "/observe"): "/observe"}
"""The timed routes: (method, path) of a directly served endpoint -> its name on the page."""
TICK_S = 1.0
HISTORY_TICKS = 300
WINDOW_TICKS = 10
"""The headline numbers are over the last ten ticks (~10 s)."""
MAX_SAMPLES_PER_TICK = 65_536
PING_TIMEOUT_S = 1.0
QUANTILES = (50.0, 95.0, 99.0)


@dataclass(frozen=True)
class RouteTick:
    """One route in one tick: its request count and latency percentiles (seconds)."""

    count: int
    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True)
class TrafficTick:
    """One sampler tick: per-route traffic, cumulative error counts, the Redis round trip."""

    at: float
    seconds: float
    routes: Mapping[str, RouteTick]
    errors: Mapping[str, float]
    redis_rtt_s: float | None


def percentiles(samples: NDArray[np.float64]) -> tuple[float | None, float | None, float | None]:
    """p50, p95, p99 of `samples` (linear interpolation), or Nones when there are none."""
    if samples.size == 0:
        return None, None, None
    p50, p95, p99 = np.percentile(samples, QUANTILES).tolist()
    return p50, p95, p99


def error_counts(metrics: ServiceMetrics) -> dict[str, float]:
    """This worker's requests answered with an error so far, by status."""
    return {
        sample.labels["status"]: sample.value
        for family in metrics.errors.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def request_totals(metrics: ServiceMetrics) -> tuple[float, float]:
    """Answered /predict and /observe requests so far, as `/metrics` reports them (summed over
    every worker when there are several), all models and outcomes."""
    totals = {"velox_predictions": 0.0, "velox_observations": 0.0}
    for family in text_string_to_metric_families(metrics.render().decode()):
        if family.name in totals:
            totals[family.name] += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return totals["velox_predictions"], totals["velox_observations"]


class TrafficMonitor:
    """Times the hot routes and keeps the last `HISTORY_TICKS` ticks of one worker."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        """An empty monitor; `timed` and `start` put it to work."""
        self.clock = clock
        self.pid = os.getpid()
        self.ticks: deque[TrafficTick] = deque(maxlen=HISTORY_TICKS)
        self._samples = {
            name: deque[float](maxlen=MAX_SAMPLES_PER_TICK) for name in ROUTES.values()
        }
        self._recent: deque[dict[str, NDArray[np.float64]]] = deque(maxlen=WINDOW_TICKS)
        self._task: asyncio.Task[None] | None = None

    def timed(
        self, endpoints: Mapping[tuple[str, str], Endpoint]
    ) -> dict[tuple[str, str], Endpoint]:
        """`endpoints` with each timed route wrapped to record its latency."""
        return {
            key: self._wrap(endpoint, self._samples[ROUTES[key]]) if key in ROUTES else endpoint
            for key, endpoint in endpoints.items()
        }

    @staticmethod
    def _wrap(endpoint: Endpoint, samples: deque[float]) -> Endpoint:
        append, clock = samples.append, time.perf_counter

        async def timed_endpoint(request: Request) -> Response:
            start = clock()
            try:
                return await endpoint(request)
            finally:
                append(clock() - start)

        return timed_endpoint

    def record(self, route: str, seconds: float) -> None:
        """Record one request's latency (what the wrapped endpoints do)."""
        self._samples[route].append(seconds)

    def tick(
        self, seconds: float, errors: Mapping[str, float], redis_rtt_s: float | None
    ) -> TrafficTick:
        """Close the current tick of `seconds`: reduce the samples since the last one."""
        drained: dict[str, NDArray[np.float64]] = {}
        for route, samples in self._samples.items():
            taken = list(samples)
            samples.clear()
            drained[route] = np.asarray(taken, dtype=np.float64)
        self._recent.append(drained)
        routes = {
            route: RouteTick(int(values.size), *percentiles(values))
            for route, values in drained.items()
        }
        tick = TrafficTick(self.clock(), seconds, routes, dict(errors), redis_rtt_s)
        self.ticks.append(tick)
        return tick

    def report(self, predictions: float, observations: float) -> TrafficResponse:
        """The page's traffic data: the last `WINDOW_TICKS` ticks, and the whole ring."""
        ticks = list(self.ticks)
        recent = ticks[-WINDOW_TICKS:]
        window_s = sum(tick.seconds for tick in recent)
        routes = []
        for route in ROUTES.values():
            samples = [drained[route] for drained in list(self._recent)[-len(recent) :]]
            joined = np.concatenate(samples) if samples else np.empty(0)
            count = sum(tick.routes[route].count for tick in recent)
            p50, p95, p99 = (None if p is None else p * 1e3 for p in percentiles(joined))
            rate = count / window_s if window_s else 0.0
            routes.append(RouteTraffic(route=route, requests=count, requests_per_s=rate,
                                       p50_ms=p50, p95_ms=p95, p99_ms=p99))  # fmt: skip
        latest = ticks[-1].errors if ticks else {}
        before = ticks[-len(recent) - 1].errors if len(ticks) > len(recent) else {}
        errors = [
            ErrorCount(status=status, total=total,
                       per_s=(total - before.get(status, 0.0)) / window_s if window_s else 0.0)
            for status, total in sorted(latest.items())
        ]  # fmt: skip
        return TrafficResponse(
            worker_pid=self.pid,
            tick_s=TICK_S,
            window_s=window_s,
            routes=routes,
            errors=errors,
            redis_rtt_ms=_ms(ticks[-1].redis_rtt_s) if ticks else None,
            predictions_total=predictions,
            observations_total=observations,
            t=[tick.at for tick in ticks],
            series=[_series(route, ticks) for route in ROUTES.values()],
            errors_per_s=_error_rates(ticks),
            redis_rtt_series_ms=[_ms(tick.redis_rtt_s) for tick in ticks],
        )

    def start(self, service: Service) -> None:
        """Start the sampler task of this worker."""
        self._task = asyncio.create_task(self._run(service))

    async def stop(self) -> None:
        """Stop the sampler task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, service: Service) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            rtt = await _redis_round_trip(service)
            now = time.monotonic()
            self.tick(now - last, error_counts(service.metrics), rtt)
            last = now


async def _redis_round_trip(service: Service) -> float | None:
    start = time.perf_counter()
    try:
        answered = await asyncio.wait_for(service.store.ping(), PING_TIMEOUT_S)
    except TimeoutError:
        return None
    return time.perf_counter() - start if answered else None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def _series(route: str, ticks: list[TrafficTick]) -> RouteSeries:
    parts = [tick.routes[route] for tick in ticks]
    return RouteSeries(
        route=route,
        requests_per_s=[
            p.count / t.seconds if t.seconds else 0.0 for p, t in zip(parts, ticks, strict=True)
        ],
        p50_ms=[_ms(p.p50) for p in parts],
        p99_ms=[_ms(p.p99) for p in parts],
    )


def _error_rates(ticks: list[TrafficTick]) -> list[float]:
    rates, before = [], 0.0
    for index, tick in enumerate(ticks):
        total = sum(tick.errors.values())
        rates.append((total - before) / tick.seconds if index and tick.seconds else 0.0)
        before = total
    return rates
