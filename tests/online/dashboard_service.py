"""A live service with a known history for the dashboard tests: two published versions
(v2 current, v1 before it), a score table built from v1, two recorded retrain cycles, and a
traffic generator."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from feature_store.registry import Registry
from jobs.cycle_log import CycleLog, CycleRecord, Outcome
from tests.feature_store.score_tables.planted_table import publish_planted_table
from tests.online.live_server import LiveServer
from tests.online.synthetic import publish, synthetic_snapshot
from tests.support.redis_server import RedisServer

MODEL = "movies"
USERS = [f"u{n}" for n in range(12)]
CYCLES = (
    CycleRecord("schedule", Outcome.REJECTED, "2026-12-07T01:00:00Z", 41.5, detail="gate: worse"),
    CycleRecord("manual", Outcome.PROMOTED, "2026-12-07T02:00:00Z", 38.25, version=2, drained=7),
)


TABLE_TOP_N = 5


def plant_history(root: str, redis_url: str) -> None:
    """Publish v1 of `MODEL`, its score table (top 5, so built from v1), then v2 (current),
    and record `CYCLES` in the cycle log."""
    publish(root, MODEL, synthetic_snapshot())
    publish_planted_table(Registry(root), MODEL, top_n=TABLE_TOP_N)
    publish(root, MODEL, synthetic_snapshot(seed=3, shift=0.1))
    client = redis.Redis.from_url(redis_url)
    for record in CYCLES:
        CycleLog(client, MODEL).record(record)
    client.close()


@contextmanager
def dashboard_server(
    home: Path, redis_server: RedisServer, env: dict[str, str] | None = None, workers: int = 1
) -> Iterator[LiveServer]:
    """A flushed Redis with the planted history, and `velox serve` over it."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    root = str(home / "snapshots")
    plant_history(root, redis_server.url)
    settings = {
        "VELOX_REDIS_URL": redis_server.url,
        "VELOX_SNAPSHOT_ROOT": root,
        "VELOX_MODEL": MODEL,
        "VELOX_SEED": "7",
        "VELOX_POLICY": "egreedy:0.2",
        **(env or {}),
    }
    server = LiveServer(home, settings, workers=workers)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        client.flushall()
        client.close()


def metric_value(text: str, name: str, labels: str = "") -> float:
    """Sum of the samples of `name` in a Prometheus text page whose labels hold `labels`."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and labels in line
    )


def one_round(http: httpx.Client, user: str, reward: float) -> None:
    """One /predict of `user` (k = 3) and a reward for its first item."""
    answer = http.get("/predict", params={"user": user, "k": 3}).json()
    body = {"user": user, "item": answer["items"][0]["item"], "reward": reward,
            "prediction_id": answer["prediction_id"]}  # fmt: skip
    http.post("/observe", json=body).raise_for_status()


@dataclass
class Traffic:
    """/predict + /observe rounds (and one bad request every 10) until `stop()`."""

    url: str
    pause_s: float = 0.01
    rounds: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Traffic:
        """Start sending in a thread."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10.0) as http:
            while not self._stop.is_set():
                one_round(http, USERS[self.rounds % len(USERS)], float(self.rounds % 5))
                if self.rounds % 10 == 0:
                    http.get("/predict", params={"user": "x", "k": 0})  # 422
                self.rounds += 1
                self._stop.wait(self.pause_s)

    def stop(self) -> None:
        """Stop sending and wait for the last round to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
