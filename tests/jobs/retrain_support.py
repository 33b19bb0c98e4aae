"""Shared parts of the retrain tests: small training options, a live service, exact checks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
import redis

from batch.drain import Drain
from batch.options import TrainOptions
from feature_store.log_cutoff import LogCutoff
from feature_store.registry import Registry
from online.redis_keys import LOG_PARTITIONS
from tests.jobs.feedback_log import drained_event_ids
from tests.online.live_server import LiveServer
from tests.online.rebase_support import Logged, after_cutoff, expected_scores, scores
from velox.settings import VeloxSettings

MODEL = "movies"
BASE_EVENTS = 2000
OPTIONS = TrainOptions(
    dataset="synthetic", synthetic_events=BASE_EVENTS, model=MODEL, rank=4, iterations=5
)
USERS = [f"u{n}" for n in range(0, 40, 5)] + [f"new{n}" for n in range(4)]
ITEMS = 60  # observed items are i0..i59, all in the synthetic catalog


def live_service(settings: VeloxSettings) -> LiveServer:
    """`velox serve` over the settings' home, snapshots and Redis."""
    assert settings.redis_url is not None
    env = {
        "VELOX_REDIS_URL": settings.redis_url,
        "VELOX_SNAPSHOT_ROOT": settings.resolved_snapshot_root(),
        "VELOX_MODEL": MODEL,
    }
    server = LiveServer(settings.home, env)
    server.start()
    return server


def assert_posteriors(
    client: httpx.Client, settings: VeloxSettings, version: int, events: Sequence[Logged]
) -> None:
    """Every user's scores under `version` equal the closed form over (the version's prior,
    the user's events after its training cutoff)."""
    snapshot = Registry(settings.resolved_snapshot_root()).load(MODEL, version)
    cutoff = LogCutoff.from_manifest(snapshot.manifest.training_cutoff, LOG_PARTITIONS)
    unseen = after_cutoff(cutoff, events)
    for user in USERS:
        assert scores(client, user, items=snapshot.items.n) == pytest.approx(
            expected_scores(snapshot, user, unseen), rel=1e-5, abs=1e-6
        ), (version, user)


def assert_trained_once(settings: VeloxSettings, version: int, events: Sequence[Logged]) -> None:
    """The version trained on the base dataset plus exactly the logged events up to its
    cutoff, each once: the drained Parquet holds them once and the manifest counts them."""
    registry = Registry(settings.resolved_snapshot_root())
    manifest = registry.manifest(MODEL, version)
    cutoff = LogCutoff.from_manifest(manifest.training_cutoff, LOG_PARTITIONS)
    unseen = {event.event_id for event in after_cutoff(cutoff, events)}
    seen = sorted(event.event_id for event in events if event.event_id not in unseen)
    root = Path(settings.home) / "events" / MODEL
    assert sorted(drained_event_ids(str(root))) == seen
    assert manifest.extra["events"] == BASE_EVENTS + len(seen)
    assert settings.redis_url is not None
    drain = Drain(redis.Redis.from_url(settings.redis_url), MODEL, root)
    assert cutoff == drain.positions()  # the cutoff is what the drain recorded, nothing else
