"""Issue 3 acceptance: MovieLens-100k end to end; the same job under spark-submit local[2]."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyspark
import pytest
from pyspark.sql import SparkSession

from batch.datasets.synthetic import SyntheticSpec, generate_synthetic
from batch.options import TrainOptions
from batch.train_command import run_train
from feature_store.registry import Registry
from velox.settings import VeloxSettings

pytestmark = [pytest.mark.spark, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_movielens_100k_beats_the_rmse_target(spark: SparkSession, tmp_path: Path) -> None:
    settings = VeloxSettings(home=tmp_path)
    manifest = run_train(TrainOptions(dataset="movielens-100k", model="ml"), settings)
    # Issue 3's target was 0.91 for a head fitted to ratings alone (0.9039). Since issue 25 the
    # default head also ranks (an exposure term chosen on validation within a 1 % RMSE
    # budget), which costs about 1 % of RMSE here (0.913): the target is kept within that 1 %.
    assert manifest.metrics["random_split_rmse"] <= 0.91 * 1.01
    for name in ("holdout_rmse", "holdout_recall@10", "holdout_ndcg@10", "holdout_coverage@10"):
        assert 0 < manifest.metrics[name] < 2
    snapshot = Registry(settings.resolved_snapshot_root()).load("ml")
    assert (len(snapshot.item_ids), len(snapshot.user_ids)) == (1682, 943)
    assert {"title", "year", "genres"} <= set(snapshot.columns.kinds)
    titles = snapshot.columns.data["title"]
    assert isinstance(titles, np.ndarray) and titles[snapshot.item_index["1"]] == "Toy Story"
    assert manifest.training_cutoff == "1998-04-22T23:10:38+00:00"


def test_the_same_job_runs_under_spark_submit(tmp_path: Path) -> None:
    data = generate_synthetic(tmp_path / "data", SyntheticSpec(n_events=2_000, n_users=40, seed=3))
    assert data.files.items is not None
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    command = [str(submit), "--master", "local[2]", "batch/submit_train.py"]
    command += ["--home", str(tmp_path / "home"), "--model", "submitted"]
    command += ["--events", data.files.events, "--items", data.files.items]
    command += ["--rank", "4", "--iterations", "5"]
    # spark-submit runs the driver with the environment's python3; as a user would, point it
    # at the interpreter that has Velox (the test may run without an activated venv).
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False, env=env
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "on local[2]" in done.stdout and "published submitted v1" in done.stdout
    registry = Registry(str(tmp_path / "home" / "snapshots"))
    assert registry.current("submitted") == 1
    assert registry.manifest("submitted", 1).extra["dataset"] == f"events:{data.files.events}"
    assert {"title", "genres", "price"} <= set(registry.load("submitted").columns.kinds)
