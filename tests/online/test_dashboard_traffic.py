"""The traffic panel's data: planted latencies and counts give known rates and percentiles."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import Request, Response
from hypothesis import given, settings
from hypothesis import strategies as st

from online.dashboard.traffic import ROUTES, WINDOW_TICKS, TrafficMonitor, percentiles
from tests.online.dashboard_service import dashboard_server, metric_value
from tests.support.redis_server import RedisServer
from velox.errors import NotFoundError


def test_rates_and_percentiles_of_planted_latencies() -> None:
    """1..100 ms on /predict over two 2-second ticks: 25/s, p50 = 50.5 ms, p99 = 99.01 ms."""
    monitor = TrafficMonitor(clock=iter([10.0, 12.0]).__next__)
    for ms in range(1, 51):
        monitor.record("/predict", ms / 1e3)
    monitor.tick(2.0, {"422": 1.0}, 0.0005)
    for ms in range(51, 101):
        monitor.record("/predict", ms / 1e3)
    monitor.tick(2.0, {"422": 5.0, "503": 2.0}, None)
    report = monitor.report(predictions=100.0, observations=0.0)
    predict, observe = report.routes
    assert (predict.route, predict.requests, predict.requests_per_s) == ("/predict", 100, 25.0)
    assert predict.p50_ms == pytest.approx(50.5)
    assert predict.p95_ms == pytest.approx(95.05)
    assert predict.p99_ms == pytest.approx(99.01)
    assert (observe.requests, observe.p50_ms) == (0, None)
    assert report.window_s == 4.0 and report.t == [10.0, 12.0]
    # errors: totals at the last tick; the window holds every tick, so per_s is total / 4 s
    assert [(e.status, e.total, e.per_s) for e in report.errors] == [("422", 5.0, 1.25),
                                                                     ("503", 2.0, 0.5)]  # fmt: skip
    assert report.errors_per_s == [0.0, 3.0]  # 1 -> 7 errors over the second 2 s tick
    assert report.redis_rtt_ms is None and report.redis_rtt_series_ms == [0.5, None]
    assert report.series[0].requests_per_s == [25.0, 25.0]
    assert report.series[0].p50_ms == pytest.approx([25.5, 75.5])


def test_headline_is_over_the_last_ticks_only() -> None:
    """Requests older than `WINDOW_TICKS` ticks leave the headline but stay in the series."""
    monitor = TrafficMonitor()
    monitor.record("/observe", 0.5)
    monitor.tick(1.0, {}, None)
    for _ in range(WINDOW_TICKS):
        monitor.record("/observe", 0.001)
        monitor.tick(1.0, {}, None)
    report = monitor.report(0.0, 0.0)
    observe = report.routes[1]
    assert observe.requests == WINDOW_TICKS and observe.p99_ms == pytest.approx(1.0)
    assert len(report.t) == WINDOW_TICKS + 1 and report.series[1].p99_ms[0] == 500.0


def test_no_tick_yet_reports_no_data() -> None:
    """A fresh monitor answers with empty series and null percentiles."""
    report = TrafficMonitor().report(0.0, 0.0)
    assert report.t == [] and report.window_s == 0.0 and report.errors == []
    assert all(r.requests == 0 and r.p50_ms is None for r in report.routes)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.floats(1e-6, 10.0), max_size=30), min_size=1, max_size=WINDOW_TICKS))
def test_window_percentiles_equal_those_of_all_samples(ticks: list[list[float]]) -> None:
    """Over several ticks the headline percentiles are those of every sample together."""
    monitor = TrafficMonitor()
    for samples in ticks:
        for value in samples:
            monitor.record("/predict", value)
        monitor.tick(1.0, {}, None)
    headline = monitor.report(0.0, 0.0).routes[0]
    expected = percentiles(np.array([v for samples in ticks for v in samples]))
    got = (headline.p50_ms, headline.p95_ms, headline.p99_ms)
    if expected[0] is None:
        assert got == (None, None, None)
        return
    assert got == pytest.approx([1e3 * want for want in expected if want is not None])
    assert got[0] is not None and got[1] is not None and got[2] is not None
    assert got[0] <= got[1] <= got[2]


def test_timed_endpoints_record_every_call_even_failing_ones() -> None:
    """The wrapper records one latency per call of a timed route, and leaves others alone."""

    async def ok(request: Request) -> Response:
        return Response(b"")

    async def missing(request: Request) -> Response:
        raise NotFoundError("no such user")

    monitor = TrafficMonitor()
    other = ("GET", "/models")
    timed = monitor.timed({("GET", "/predict"): ok, ("POST", "/observe"): missing, other: ok})
    assert timed[other] is ok
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})

    async def call(key: tuple[str, str]) -> Response:
        return await timed[key](request)

    asyncio.run(call(("GET", "/predict")))
    with pytest.raises(NotFoundError):
        asyncio.run(call(("POST", "/observe")))
    tick = monitor.tick(1.0, {}, None)
    assert {route: part.count for route, part in tick.routes.items()} == dict.fromkeys(
        ROUTES.values(), 1
    )


@pytest.mark.slow
def test_totals_are_the_whole_service_with_two_workers(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """With `--workers 2`, whichever worker answers, the totals are /metrics' (every worker's)."""
    with (
        dashboard_server(tmp_path, redis_server, workers=2) as server,
        httpx.Client(base_url=server.url, timeout=30.0) as http,
    ):
        for n in range(30):
            http.get("/predict", params={"user": f"u{n}", "k": 2}).raise_for_status()
        for _ in range(6):
            traffic = http.get("/dashboard/data/traffic").json()
            assert traffic["predictions_total"] == 30.0
            assert metric_value(http.get("/metrics").text, "velox_predictions_total") == 30.0
