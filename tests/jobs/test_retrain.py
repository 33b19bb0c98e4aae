"""The acceptance of issue 6: events → retrain → more events while training runs → swap;
afterwards every user's posterior is the closed form over (new w0, events after the cutoff),
over HTTP against a real Redis and a real Spark run; a rollback keeps the old version exact."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import redis

from batch.train_command import run_train
from feature_store.log_cutoff import LogCutoff
from feature_store.registry import Registry
from jobs.retrain import RetrainOptions, run_retrain
from online.redis_keys import LOG_PARTITIONS, partition_of
from tests.jobs.retrain_support import (
    ITEMS,
    MODEL,
    OPTIONS,
    USERS,
    assert_posteriors,
    assert_trained_once,
    live_service,
)
from tests.online.rebase_support import Logged, observe_many, wait_for_version
from velox.settings import VeloxSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def test_feedback_during_a_retrain_is_neither_lost_nor_counted_twice(
    spark: SparkSession, redis_url: str, tmp_path: Path
) -> None:
    settings = VeloxSettings(home=tmp_path / "home", redis_url=redis_url, model=MODEL)
    run_train(OPTIONS, settings)  # v1: the base dataset only
    server = live_service(settings)
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            before = observe_many(client, USERS, per_user=3, seed=1, items=ITEMS)
            training = threading.Event()

            def on_stage(name: str) -> None:
                if name == "train":
                    training.set()

            with ThreadPoolExecutor(max_workers=1) as pool:
                job = pool.submit(
                    run_retrain,
                    RetrainOptions(OPTIONS),
                    settings,
                    redis.Redis.from_url(redis_url),
                    on_stage=on_stage,
                )
                while not training.wait(0.5):
                    assert not job.done(), job.exception()
                during: list[Logged] = []
                while not job.done():  # observe while Spark trains, a round every 0.2 s
                    if len(during) < 400:  # per user well under the 1000 replayable events
                        users = USERS[::3]
                        during += observe_many(client, users, 1, seed=len(during), items=ITEMS)
                    time.sleep(0.2)
                report = job.result()
            assert report.promoted
            assert during, "no event was observed while training ran"

            cutoff = LogCutoff.from_manifest(report.manifest.training_cutoff, LOG_PARTITIONS)
            assert all(cutoff.includes(partition_of(e.user), e.log_id) for e in before)
            assert not any(cutoff.includes(partition_of(e.user), e.log_id) for e in during)
            assert_trained_once(settings, 2, before + during)
            wait_for_version(client, 2)
            after = observe_many(client, USERS[1::2], per_user=2, seed=99, items=ITEMS)
            assert_posteriors(client, settings, 2, before + during + after)

            Registry(settings.resolved_snapshot_root()).rollback(MODEL)
            wait_for_version(client, 1)
            assert_posteriors(client, settings, 1, before + during + after)
    finally:
        server.stop()
