"""Prometheus metrics of one service process (`GET /metrics`).

Each uvicorn worker counts its own requests; a scrape reaches one worker. Counters are cheap
(a locked add), so the hot paths update them inline, through `labelled`: prometheus-client's
`labels()` checks and joins the label values on every call (1.5-3 µs here), so the hot paths
keep the labelled children they have used.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


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
            registry=self.registry,
        )  # fmt: skip
        self.snapshot_failures = Counter(
            "velox_snapshot_load_failures", "Snapshot versions that failed to load.", ["model"],
            registry=self.registry,
        )  # fmt: skip

    def labelled(self, metric: Counter, *values: str) -> Counter:
        """`metric.labels(*values)`, kept after the first call."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
