"""`/metrics` of `velox serve --workers 2` counts every worker's requests in every scrape, and
times /predict and /observe in a histogram (issue 23, item 7)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.online.live_server import LiveServer

PREDICTS, OBSERVES, SCRAPES = 40, 25, 16


@pytest.fixture
def two_workers(tmp_path: Path, redis_url: str, snapshot_root: str) -> Iterator[LiveServer]:
    """`velox serve --workers 2` over the test Redis and the synthetic snapshot."""
    env = {"VELOX_REDIS_URL": redis_url, "VELOX_SNAPSHOT_ROOT": snapshot_root}
    server = LiveServer(tmp_path, {**env, "VELOX_MODEL": "movies"}, workers=2)
    server.start()
    yield server
    server.stop()


def _sample(text: str, name: str, labels: str) -> float:
    """The value of one sample `name{labels}` in a Prometheus text exposition."""
    pattern = rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    assert found is not None, f"{name}{{{labels}}} not in /metrics"
    return float(found.group(1))


def test_every_scrape_counts_every_worker(two_workers: LiveServer) -> None:
    """Requests on fresh connections spread over both workers; every later scrape, whichever
    worker answers it, reads exactly the totals, and the histogram counts every request."""
    url = two_workers.url
    for n in range(PREDICTS):
        answer = httpx.get(f"{url}/predict", params={"user": f"w{n}", "k": "3"})
        assert answer.status_code == 200
    for n in range(OBSERVES):
        body = {"user": f"w{n}", "item": "i1", "reward": 1.0}
        assert httpx.post(f"{url}/observe", json=body).status_code == 200
    for _ in range(SCRAPES):
        text = httpx.get(f"{url}/metrics").text
        assert _sample(text, "velox_predictions_total", 'model="movies"') == PREDICTS
        applied = 'model="movies",outcome="applied"'
        assert _sample(text, "velox_observations_total", applied) == OBSERVES
        predict_count = _sample(text, "velox_request_seconds_count", 'route="/predict"')
        observe_count = _sample(text, "velox_request_seconds_count", 'route="/observe"')
        assert (predict_count, observe_count) == (PREDICTS, OBSERVES)
        slowest = _sample(text, "velox_request_seconds_bucket", 'le="+Inf",route="/predict"')
        assert slowest == PREDICTS


def test_one_worker_has_the_latency_histogram(client: httpx.Client) -> None:
    """With one worker too, /metrics has velox_request_seconds for both hot routes."""
    before = client.get("/metrics").text
    count = _sample(before, "velox_request_seconds_count", 'route="/predict"')
    assert client.get("/predict", params={"user": "h1", "k": "2"}).status_code == 200
    after = client.get("/metrics").text
    assert _sample(after, "velox_request_seconds_count", 'route="/predict"') == count + 1
    assert _sample(after, "velox_request_seconds_sum", 'route="/predict"') > 0
