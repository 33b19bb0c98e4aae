"""`velox train` wherever Velox's Python is: no activated venv, another directory, a cluster.

The CLI tests run the installed `velox` entry point in a subprocess, from a temporary
directory, with a PATH whose first `python3` lacks Velox (a fresh venv with nothing in it).
Local Spark workers running the driver's interpreter is tested with a plain install in
tests/test_plain_install.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from batch.errors import SparkClusterError
from batch.ship_package import SHIPPED_PACKAGES, write_package_zip
from batch.spark import check_master
from feature_store.registry import Registry
from tests.support.bare_venv import imports_velox, make_bare_venv
from tests.support.redis_server import free_port
from tests.support.spark_cluster import StandaloneCluster, loopback_env

VELOX = Path(sys.executable).parent / "velox"
EVENTS = "3000"  # a small synthetic dataset: the point is where the code runs, not the model


@pytest.fixture(scope="module")
def other_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `python3` of the same version with neither Velox nor its dependencies."""
    return make_bare_venv(tmp_path_factory.mktemp("other") / "venv", dependencies=False)


def _env(home: Path, first_on_path: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this environment) without any venv activation, and `first_on_path`'s
    directory first on PATH."""
    env = {k: v for k, v in (base or dict(os.environ)).items() if not k.startswith("VELOX_")}
    for name in ("VIRTUAL_ENV", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "PYTHONPATH"):
        env.pop(name, None)
    env["PATH"] = f"{first_on_path.parent}:/usr/bin:/bin"
    env["VELOX_HOME"] = str(home)
    return env


def _train(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(VELOX), "train", "--dataset", "synthetic", "--synthetic-events", EVENTS, *args]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=540, check=False
    )


def test_the_packages_zip_imports_on_its_own(tmp_path: Path) -> None:
    path = write_package_zip(tmp_path)
    assert path == write_package_zip(tmp_path)  # same code, same bytes, same name
    names = zipfile.ZipFile(path).namelist()
    assert {f"{package}/__init__.py" for package in SHIPPED_PACKAGES} <= set(names)
    assert "batch/ship_package.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".so"))]
    assert not [n for n in names if n.startswith("online/")]
    # An interpreter with the dependencies but without Velox imports the jobs from the zip.
    python = make_bare_venv(tmp_path / "venv")
    assert not imports_velox(python, tmp_path)
    code = "import batch.head, batch.train_command, jobs.retrain; print(batch.head.__file__)"
    found = subprocess.run(
        [str(python), "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(path / "batch" / "head.py")


@pytest.mark.parametrize(
    ("master", "message"),
    [
        ("foo", "unknown Spark master 'foo'"),
        ("spark://host-without-port", "expected spark://HOST:PORT"),
        ("spark://127.0.0.1:99999", "expected spark://HOST:PORT"),
    ],
)
def test_check_master_refuses_urls_spark_would_not_take(master: str, message: str) -> None:
    with pytest.raises(SparkClusterError, match=message):
        check_master(master)


def test_check_master_takes_the_first_standalone_master_that_answers(tmp_path: Path) -> None:
    import socket

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        check_master(f"spark://127.0.0.1:{free_port()},127.0.0.1:{port}")
    for master in ("local", "local[2]", "local[*]", "local[2,3]", "yarn", "k8s://https://k:443"):
        check_master(master)


def test_an_unreachable_master_is_one_line_and_writes_nothing(
    tmp_path: Path, other_python: Path
) -> None:
    home = tmp_path / "home"
    master = f"spark://127.0.0.1:{free_port()}"
    done = _train(tmp_path, _env(home, other_python), "--master", master)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: cannot reach the Spark master {master} "
        f"(127.0.0.1:{master.rsplit(':', 1)[1]}: Connection refused): is it running?"
    ]
    assert not (home / "snapshots").exists() and not (home / "datasets").exists()


@pytest.mark.slow
@pytest.mark.spark
def test_train_on_a_standalone_cluster_ships_velox_to_the_executors(
    tmp_path: Path, other_python: Path
) -> None:
    # The executors' Python has Velox's dependencies but not Velox: it must come with the job.
    executor_python = make_bare_venv(tmp_path / "executor-venv")
    assert not imports_velox(executor_python, tmp_path)
    cluster = StandaloneCluster(tmp_path / "spark")
    cluster.start()
    try:
        home = tmp_path / "home"
        # Spark's 200 shuffle partitions would make thousands of tiny tasks on one core.
        conf = tmp_path / "spark-conf"
        conf.mkdir()
        (conf / "spark-defaults.conf").write_text("spark.sql.shuffle.partitions 2\n")
        env = {**_env(home, other_python, loopback_env()), "SPARK_CONF_DIR": str(conf)}
        # Executors whose Python lacks the dependencies: refused at start, in one line.
        refused = _train(tmp_path, {**env, "PYSPARK_PYTHON": str(other_python)}, "--master",
                         cluster.url)  # fmt: skip
        assert refused.returncode == 1
        # Spark's own start-up notes come first; then the one line, no traceback.
        last = refused.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: the executors of {cluster.url} cannot run Velox")
        assert "No module named" in last and "PYSPARK_PYTHON" in last
        assert "Traceback" not in refused.stderr
        assert not (home / "snapshots").exists()

        executors = {**env, "PYSPARK_PYTHON": str(executor_python)}
        done = _train(tmp_path, executors, "--master", cluster.url, "--rank", "4",
                      "--iterations", "2")  # fmt: skip
        # The job ran on the cluster and published. Whether v1 is promoted is the popularity
        # gate's verdict on 3,000 synthetic events (batch/gate.py), not this test's subject.
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 0 or (
            done.returncode == 1
            and "does not rank better than recommending the most popular" in lines[-1]
        ), done.stderr[-3000:] + cluster.logs()
        assert f"on {cluster.url}" in done.stdout
        registry = Registry(str(home / "snapshots"))
        assert registry.versions("default") == [1]
        assert registry.manifest("default", 1).extra["events"] == int(EVENTS)
    finally:
        cluster.stop()
