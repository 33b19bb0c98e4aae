"""Prometheus metrics of the service (`GET /metrics`), whole across uvicorn workers.

With one worker the metrics live in this process. With several (`velox serve --workers N`),
`velox serve` points `PROMETHEUS_MULTIPROC_DIR` at a fresh directory before the workers start:
prometheus-client then keeps every worker's values in memory-mapped files there, and a scrape,
whichever worker answers it, sums them all (a counter never goes backwards between scrapes).
Counters are cheap (a locked add; about 1.5 µs instead of 0.4 µs in multiprocess mode), so the
hot paths update them inline, through `labelled`: prometheus-client's `labels()` checks and
joins the label values on every call (1.5-3 µs here), so the hot paths keep the labelled
children they have used. `/predict` and `/observe` are timed in `velox_request_seconds`
(`timed`: two clock reads and one histogram observation per request).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Awaitable, Callable, Mapping

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Seconds: the budgets are sub-millisecond, a slow request is tens of milliseconds."""

Endpoint = Callable[[Request], Awaitable[Response]]


class ServiceMetrics:
    """The counters and gauges the service exports, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[int, tuple[str, ...]], Counter] = {}
        self.predictions = Counter(
            "velox_predictions", "Answered /predict requests.", ["model"], registry=self.registry
        )
        self.observations = Counter(
            "velox_observations",
            "Answered /observe requests by outcome (applied or duplicate).",
            ["model", "outcome"],
            registry=self.registry,
        )
        self.cas_attempts = Counter(
            "velox_observe_cas_attempts",
            "Compare-and-set attempts of /observe (more than observations: conflicts).",
            ["model"],
            registry=self.registry,
        )
        self.rebases = Counter(
            "velox_rebases",
            "User states rebased onto the served version (by the request that touched them).",
            ["model", "path"],
            registry=self.registry,
        )
        self.replayed_events = Counter(
            "velox_replayed_events",
            "Logged events replayed onto rebased user states.",
            ["model"],
            registry=self.registry,
        )
        self.default_rewards = Counter(
            "velox_default_rewards",
            "Default rewards applied to shown items that got none in their reward window.",
            ["model"],
            registry=self.registry,
        )
        self.errors = Counter(
            "velox_request_errors", "Requests answered with an error.", ["status"],
            registry=self.registry,
        )  # fmt: skip
        self.snapshot_version = Gauge(
            "velox_snapshot_version", "Snapshot version being served.", ["model"],
            registry=self.registry, multiprocess_mode="max",
        )  # fmt: skip
        self.snapshot_failures = Counter(
            "velox_snapshot_load_failures", "Snapshot versions that failed to load.", ["model"],
            registry=self.registry,
        )  # fmt: skip

        self.latency = Histogram(
            "velox_request_seconds",
            "Seconds /predict and /observe take to build their response, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._multiprocess = os.environ.get(MULTIPROCESS_ENV) is not None

    def timed(
        self, endpoints: Mapping[tuple[str, str], Endpoint]
    ) -> dict[tuple[str, str], Endpoint]:
        """`endpoints` (method, path) -> endpoint, each wrapped to observe its latency."""
        return {
            key: _timed(endpoint, self.latency.labels(key[1]))
            for key, endpoint in endpoints.items()
        }

    def labelled(self, metric: Counter, *values: str) -> Counter:
        """`metric.labels(*values)`, kept after the first call."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (of every worker, when several)."""
        if not self._multiprocess:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged)


def _timed(endpoint: Endpoint, histogram: Histogram) -> Endpoint:
    observe, clock = histogram.observe, time.perf_counter

    @functools.wraps(endpoint)
    async def timed_endpoint(request: Request) -> Response:
        start = clock()
        try:
            return await endpoint(request)
        finally:
            observe(clock() - start)

    return timed_endpoint
