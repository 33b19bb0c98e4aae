"""A real Spark standalone cluster on loopback: one master and one worker process.

Both are started from the installed pyspark (`bin/spark-class`), as a user starts them, with
`cores` (default one) and 1 GiB for executors, and stopped (SIGTERM, then SIGKILL) by `stop()`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.support.redis_server import free_port

MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"


def spark_home() -> Path:
    """The installed pyspark's directory (it holds `bin/spark-class` and the jars)."""
    import pyspark

    return Path(pyspark.__file__).parent


def loopback_env() -> dict[str, str]:
    """This environment with every Spark process (master, worker, driver) on 127.0.0.1."""
    return {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1"}


class StandaloneCluster:
    """`spark://127.0.0.1:<port>` with one worker; logs and work files under `directory`."""

    def __init__(self, directory: Path, cores: int = 1) -> None:
        self.directory = directory
        self.cores = cores
        self.port = free_port()
        self.ui_port = free_port()
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """The master URL to give `--master`."""
        return f"spark://127.0.0.1:{self.port}"

    def _start(self, name: str, args: list[str]) -> None:
        env = {**loopback_env(), "SPARK_LOG_DIR": str(self.directory)}
        log = (self.directory / f"{name}.log").open("wb")
        command = [str(spark_home() / "bin" / "spark-class"), *args]
        self._processes.append(
            subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        )

    def _alive_workers(self) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json", timeout=2) as r:
                state = json.load(r)
        except (OSError, ValueError):  # not listening yet, or a page that is not JSON yet
            return 0
        return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")

    def start(self, timeout_s: float = 120.0) -> None:
        """Start the master and the worker; wait until the worker has registered. On any
        failure (including an interrupt) both are stopped before the error goes on."""
        self.directory.mkdir(parents=True, exist_ok=True)
        host = ["--host", "127.0.0.1"]
        try:
            self._start(
                "master",
                [MASTER, *host, "--port", str(self.port), "--webui-port", str(self.ui_port)],
            )
            self._start(
                "worker",
                [WORKER, self.url, *host, "--port", str(free_port()), "--webui-port",
                 str(free_port()), "--cores", str(self.cores), "--memory", "1g",
                 "--work-dir", str(self.directory / "work")],
            )  # fmt: skip
            if not self._worker_registered(timeout_s):
                raise RuntimeError(f"the Spark cluster did not start:\n{self.logs()}")
        except BaseException:
            self.stop()
            raise

    def _worker_registered(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(process.poll() is not None for process in self._processes):
                return False
            if self._alive_workers() >= 1:
                return True
            time.sleep(0.5)
        return False

    def logs(self) -> str:
        """The end of the master's and the worker's logs."""
        parts = []
        for name in ("master", "worker"):
            path = self.directory / f"{name}.log"
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop the worker, then the master."""
        for process in reversed(self._processes):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._processes = []
