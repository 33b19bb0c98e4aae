"""Response models of the dashboard's data endpoints (`GET /dashboard/data/...`).

Times are epoch seconds (floats), latencies milliseconds, rates per second. A value that
cannot be known yet (no request in the window, no complete count) is null, never NaN.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class PanelInfo(BaseModel):
    """One panel of the page: where its data comes from and how often it refreshes."""

    id: str
    title: str
    data_path: str
    refresh_s: float


class PanelsResponse(BaseModel):
    """The panels the page renders, the served models and the candidate policies of OPE."""

    panels: list[PanelInfo]
    models: list[str]
    default_model: str | None
    ope_policies: list[str]


class VersionRow(BaseModel):
    """One published version of a model, from its manifest."""

    version: int
    created_at: str
    kind: str
    dim: int
    metrics: dict[str, float]
    parent: int | None
    status: Literal["current", "previous", "published"] = Field(
        description="current, once current (in CURRENT's history), or published only"
    )


class PointerInfo(BaseModel):
    """The model's CURRENT pointer: promotions push onto `history`, rollbacks pop it."""

    current: int
    history: list[int]
    updated_at: str


class CycleRow(BaseModel):
    """One retrain cycle as jobs/cycle_log.py records it (newest first)."""

    trigger: str
    outcome: str = Field(description="promoted, published, rejected (by the gate), failed, busy")
    started_at: str
    seconds: float
    version: int | None
    drained: int
    detail: str


class ModelOverview(BaseModel):
    """One served model: what it is, how it was trained, and its retrain history."""

    model: str
    version: int
    kind: str
    dim: int
    items: int = Field(description="catalog size of the served snapshot")
    created_at: str
    policy: str
    lam: float
    noise_std: float
    metrics: dict[str, float]
    pointer: PointerInfo | None
    versions: list[VersionRow]
    cycles: list[CycleRow]
    cycle_counts: dict[str, int]


class OverviewResponse(BaseModel):
    """Every served model (sorted by name) and which one is the default."""

    default_model: str | None
    models: list[ModelOverview]


class RouteTraffic(BaseModel):
    """Requests per second and latency percentiles of one hot route over the window."""

    route: str
    requests: int
    requests_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class ErrorCount(BaseModel):
    """Requests answered with one error status: since start, and per second in the window."""

    status: str
    total: float
    per_s: float


class RouteSeries(BaseModel):
    """One value per sampler tick for one route (null: no request in that tick)."""

    route: str
    requests_per_s: list[float]
    p50_ms: list[float | None]
    p99_ms: list[float | None]


class TrafficResponse(BaseModel):
    """Live traffic of the worker that answered (each uvicorn worker samples its own); the
    two totals are the whole service's, as /metrics reports them."""

    worker_pid: int
    tick_s: float
    window_s: float = Field(description="span of the headline numbers (the last ticks)")
    routes: list[RouteTraffic]
    errors: list[ErrorCount]
    redis_rtt_ms: float | None
    predictions_total: float = Field(description="velox_predictions_total as /metrics says")
    observations_total: float = Field(description="velox_observations_total as /metrics says")
    t: list[float] = Field(description="end of each sampler tick, oldest first")
    series: list[RouteSeries]
    errors_per_s: list[float]
    redis_rtt_series_ms: list[float | None]


class Histogram(BaseModel):
    """Counts between consecutive edges (the last bin includes its right edge)."""

    edges: list[float]
    counts: list[int]


class RewardSeries(BaseModel):
    """Rewards in arrival order, smoothed by a moving average over `window` events."""

    window: int
    t: list[float]
    moving_average: list[float]


class UserCount(BaseModel):
    """Users with online state under the served version, counted by an incremental SCAN."""

    version: int
    count: int | None = Field(description="result of the last complete pass (null: none yet)")
    counted_at: float | None
    pass_keys_scanned: int = Field(description="keys looked at so far in the running pass")


class LearningResponse(BaseModel):
    """What the recent feedback and decision logs say about learning and exploration."""

    model: str
    version: int
    events: int = Field(description="feedback-log events in the sample")
    decisions: int = Field(description="decision-log entries in the sample")
    since: float | None = Field(description="the sample covers arrivals from here to now")
    reward_mean: float | None
    rewards: RewardSeries
    slots: int
    explored_slots: int
    explored_share: float | None
    explore_threshold: float = Field(description="a slot counts as explored below this")
    propensities: Histogram
    policies: dict[str, int] = Field(description="decisions in the sample per logging policy")
    users_with_state: UserCount


class OpeEstimate(BaseModel):
    """One estimator's value of the target policy, with its bootstrap interval."""

    estimator: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    ess: float


class OpeResponse(BaseModel):
    """Off-policy estimates of `policy` on the recent logged, rewarded slots."""

    model: str
    version: int
    policy: str
    rows: int = Field(description="rewarded slots with a logged propensity in the sample")
    logged_policies: dict[str, int]
    logged_mean_reward: float | None
    estimates: list[OpeEstimate]
    computed_at: float
    compute_s: float
    note: str | None = Field(description="why there are no estimates, when there are none")


class ExtensionMetric(BaseModel):
    """One number (or short text) of an optional panel."""

    label: str
    value: float | str | None
    unit: str = ""


class ExtensionPanel(BaseModel):
    """An optional panel: available with its metrics, or not (with the reason)."""

    id: str
    title: str
    available: bool
    reason: str | None
    metrics: list[ExtensionMetric]


class ExtensionsResponse(BaseModel):
    """Every optional panel the page knows of."""

    panels: list[ExtensionPanel]
