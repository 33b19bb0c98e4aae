"""Materializing next to a live service, from the CLI, and after a retrain's promote."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
import redis
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from batch.materialize.job import MaterializeOptions, materialize
from batch.options import TrainOptions
from feature_store.manifest import Manifest
from feature_store.registry import Registry
from jobs.retrain import RetrainOptions, run_retrain
from tests.batch.materialize.brute_force import (
    MODEL,
    assert_rows_match,
    expected_rows,
    publish,
    table_rows,
)
from tests.feature_store.planted import planted_data
from tests.online.live_server import LiveServer
from velox.cli import app
from velox.settings import VeloxSettings

pytestmark = pytest.mark.spark


@pytest.mark.slow
def test_materializing_while_the_service_answers_disturbs_no_request(
    tmp_path: Path,
    spark: SparkSession,
    redis_url: str,
) -> None:
    root = tmp_path / "snapshots"
    publish(root, planted_data(seed=8, n=60, m=30, d=6))
    env = {"VELOX_REDIS_URL": redis_url, "VELOX_SNAPSHOT_ROOT": str(root), "VELOX_MODEL": MODEL}
    server = LiveServer(tmp_path, env)
    server.start()
    users = [f"user-{n}" for n in range(0, 30, 3)]
    answers: list[tuple[int, str]] = []
    done = threading.Event()

    def ask(client: httpx.Client, user: str) -> tuple[int, str]:
        reply = client.get("/predict", params={"user": user, "k": 5, "explore": "false"})
        body = reply.json()
        return reply.status_code, f"{body.get('version')} {[i['item'] for i in body['items']]}"

    def hammer() -> None:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            while not done.is_set():
                answers.extend(ask(client, user) for user in users)

    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            before = [ask(client, user) for user in users]
        worker = threading.Thread(target=hammer)
        worker.start()
        options = MaterializeOptions(model=MODEL, device="cpu", top_n=10, rows_per_part=50)
        materialize(options, str(root), spark=spark)
        done.set()
        worker.join()
    finally:
        done.set()
        server.stop()
    assert len(answers) >= len(users)
    assert all(answer == before[i % len(users)] for i, answer in enumerate(answers))
    assert Registry(str(root)).current(MODEL) == 1 and Registry(str(root)).versions(MODEL) == [1]


def test_the_cli_builds_a_table_and_refuses_clashing_options(
    tmp_path: Path, spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = publish(tmp_path / "home" / "snapshots", planted_data(seed=9, n=20, m=6, d=3))
    monkeypatch.setenv("VELOX_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VELOX_SNAPSHOT_ROOT", raising=False)
    args = ["materialize", "--model", MODEL, "--device", "cpu"]
    result = CliRunner().invoke(app, [*args, "--top-n", "4"])
    assert result.exit_code == 0, result.output
    assert "score table 1 of planted" in result.output
    assert "materialize planted: 2/2 parts" in result.output  # one progress line per part
    root = tmp_path / "home" / "snapshots"
    table = root / MODEL / "score_tables" / "1"
    assert_rows_match(table_rows(table), expected_rows(root, version, 4))
    assert CliRunner().invoke(app, [*args, "--top-n", "4", "--all-items"]).exit_code == 2


def test_retrain_with_materialize_builds_the_promoted_versions_table(
    tmp_path: Path,
    spark: SparkSession,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = VeloxSettings(home=tmp_path / "home", redis_url=redis_url, model=MODEL)
    root = Path(settings.resolved_snapshot_root())
    publish(root, planted_data(seed=11, n=25, m=8, d=4))  # v1, current

    def train(options: TrainOptions, _: VeloxSettings, **__: object) -> Manifest:
        # Training itself is not under test here (tests/jobs/test_retrain.py runs it): the
        # cycle publishes v2 unpromoted, as run_train does for it, then promotes it.
        data = planted_data(seed=12, n=25, m=8, d=4)
        return Registry(str(root)).publish(options.model, data, promote=False)

    monkeypatch.setattr("batch.train_command.run_train", train)
    options = RetrainOptions(
        TrainOptions(dataset="synthetic", model=MODEL),
        materialize=MaterializeOptions(model=MODEL, device="cpu", top_n=7),
    )
    report = run_retrain(options, settings, redis.Redis.from_url(redis_url))
    assert report.promoted and report.table_version == 1 and "materialize" in report.seconds
    assert Registry(str(root)).current(MODEL) == report.manifest.version == 2
    directory = root / MODEL / "score_tables" / "1"
    assert_rows_match(table_rows(directory), expected_rows(root, 2, 7))
