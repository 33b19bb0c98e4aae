"""The deep model's cluster path: TorchDistributor on a real standalone Spark cluster, DDP
over two CPU processes (gloo), the same training function as on one machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.spark_cluster import StandaloneCluster, loopback_env


@pytest.mark.slow
@pytest.mark.spark
def test_two_tower_training_runs_as_two_ddp_processes_on_a_standalone_cluster(
    tmp_path: Path,
) -> None:
    cluster = StandaloneCluster(tmp_path / "spark", cores=2)  # one core per DDP process
    cluster.start()
    try:
        env = {**loopback_env(), "PYSPARK_PYTHON": sys.executable}
        done = subprocess.run(
            [sys.executable, "-m", "tests.batch.deep_ddp_run", str(tmp_path), cluster.url, "2"],
            check=False, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        cluster.stop()
    assert done.returncode == 0, done.stderr[-4000:] + cluster.logs()
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Rank 0's towers came back from a 2-process DDP run that trained every epoch.
    assert (result["cluster_processes"], result["cluster_epochs"]) == (2, 20)
    assert result["here_processes"] == 1
    # Both learned the planted ratings: validation RMSE well under the constant predictor's.
    # (Each DDP process takes every other row at the same batch size, so after the same
    # epochs it has taken half the steps: close to, not equal to, the one-process run.)
    assert result["here_rmse"] < 0.9 * result["constant_rmse"]
    assert result["cluster_rmse"] < 0.95 * result["constant_rmse"]
    assert result["cluster_rmse"] < 1.15 * result["here_rmse"]
