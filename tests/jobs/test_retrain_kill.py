"""Killing the retrain at any stage loses and duplicates nothing: after crashes after the drain,
mid-training and before the promotion, `velox retrain` (CLI, --master) trains on every event
exactly once and the service's posteriors are exact."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from feature_store.registry import Registry
from tests.jobs.crash_retrain import POINTS
from tests.jobs.retrain_support import (
    BASE_EVENTS,
    ITEMS,
    MODEL,
    USERS,
    assert_posteriors,
    assert_trained_once,
    live_service,
)
from tests.online.rebase_support import observe_many, wait_for_version
from tests.online.synthetic import publish, synthetic_snapshot
from velox.settings import VeloxSettings


def job_env(settings: VeloxSettings) -> dict[str, str]:
    """The environment of a job process over `settings`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("VELOX_")}
    assert settings.redis_url is not None
    return {
        **inherited,
        "VELOX_HOME": str(settings.home),
        "VELOX_REDIS_URL": settings.redis_url,
        "VELOX_MODEL": MODEL,
    }


def test_killed_retrains_lose_and_duplicate_nothing(redis_url: str, tmp_path: Path) -> None:
    settings = VeloxSettings(home=tmp_path / "home", redis_url=redis_url, model=MODEL)
    publish(settings.resolved_snapshot_root(), MODEL, synthetic_snapshot(n_items=ITEMS))
    server = live_service(settings)
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            events = observe_many(client, USERS, per_user=3, seed=1, items=ITEMS)
            for n, point in enumerate(POINTS):
                child = subprocess.run(
                    [sys.executable, "-m", "tests.jobs.crash_retrain", point],
                    env=job_env(settings), capture_output=True, text=True, timeout=900,
                    check=False,
                )  # fmt: skip
                assert child.returncode == -9, (point, child.stdout[-2000:], child.stderr[-3000:])
                events += observe_many(client, USERS, per_user=2, seed=10 + n, items=ITEMS)
            registry = Registry(settings.resolved_snapshot_root())
            assert (registry.versions(MODEL), registry.current(MODEL)) == ([1, 2], 1)

            command = [sys.executable, "-c", "from velox.cli import main; main()", "retrain"]
            command += ["--dataset", "synthetic", "--master", "local[1]", "--rank", "4"]
            command += ["--iterations", "5", "--synthetic-events", str(BASE_EVENTS)]
            done = subprocess.run(
                command, env=job_env(settings), capture_output=True, text=True, timeout=900,
                check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            assert registry.current(MODEL) == 3
            assert_trained_once(settings, 3, events)
            wait_for_version(client, 3)
            events += observe_many(client, USERS[::2], per_user=2, seed=99, items=ITEMS)
            assert_posteriors(client, settings, 3, events)
    finally:
        server.stop()
