"""The Spark session of a batch job: local[*] by default, any master URL unchanged."""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from batch.errors import SparkClusterError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[*]"

# Read at JVM launch, so they only apply when this process starts Spark itself.
LAUNCH_CONF: dict[str, str] = {
    "spark.ui.showConsoleProgress": "false",
}
DEFAULT_DRIVER_MEMORY = "2g"  # unless SPARK_DRIVER_MEMORY says otherwise
# A short local job spends much of its time compiling and collecting garbage: with the C1
# compiler alone MovieLens-100k trained in 53-77 s instead of 102-108 s on the 2-core dev VM
# at load 4-7, and the serial collector then took it from 48-51 s to 40-42 s at load 2.5-3
# (less CPU in G1's concurrent threads and write barriers), same RMSE (BENCHMARKS.md). C2
# and G1 pay off on long jobs (an earlier session saw a 10^6-event job slow from 97 s to
# 131 s with C1 only), so only short jobs ask for these.
SHORT_JOB_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
_DRIVER_JAVA_OPTIONS = re.compile(r"^\s*spark\.driver\.extraJavaOptions\s*[=:\s]", re.MULTILINE)
# Runtime SQL settings, applied unless the user set them (e.g. with spark-submit --conf).
SESSION_CONF: dict[str, str] = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
}
# One machine: one shuffle partition per core beats Spark's 200 by far on data that fits.
LOCAL_SESSION_CONF: dict[str, str] = {
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "1024",
}


_MASTER_FORMS = re.compile(r"^(local(\[[^\]]+\])?|local-cluster\[[^\]]+\]|yarn|k8s://.+)$")
MASTER_CONNECT_TIMEOUT_S = 5.0


def is_local(master: str) -> bool:
    """True for `local`, `local[N]` and `local[*]` masters."""
    return master == "local" or master.startswith("local[")


def _standalone_addresses(master: str) -> list[tuple[str, int]]:
    """The (host, port) pairs of a `spark://h1:p1[,h2:p2]` URL; `SparkClusterError` if malformed."""
    addresses = []
    for part in master.removeprefix("spark://").split(","):
        host, _, port = part.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SparkClusterError(f"bad Spark master URL {master!r}: expected spark://HOST:PORT")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def check_master(master: str) -> None:
    """Refuse a master URL Spark would not take, or a standalone master nobody listens at.

    Without this Spark retries an unreachable master for a minute and then stops the job
    with a stack trace; here it is one line before anything is started or written.
    """
    if not master.startswith("spark://"):
        if not _MASTER_FORMS.match(master):
            raise SparkClusterError(
                f"unknown Spark master {master!r}: expected local[*], local[N], "
                "spark://HOST:PORT, yarn or k8s://URL"
            )
        return
    reasons = []
    for host, port in _standalone_addresses(master):
        try:
            socket.create_connection((host, port), MASTER_CONNECT_TIMEOUT_S).close()
        except OSError as error:
            reasons.append(f"{host}:{port}: {error.strerror or error}")
        else:
            return
    raise SparkClusterError(
        f"cannot reach the Spark master {master} ({'; '.join(reasons)}): is it running?"
    )


@contextmanager
def _workers_run_this_python(master: str | None) -> Iterator[None]:
    """While a local context starts, make its Python workers run this interpreter.

    Spark starts them with `PYSPARK_PYTHON`, else the first `python3` on PATH: without an
    activated virtualenv that is another interpreter, one without Velox. A user's own
    `PYSPARK_PYTHON` stays; a cluster's workers keep theirs (see `batch.ship_package`).
    """
    if master is None or not is_local(master) or "PYSPARK_PYTHON" in os.environ:
        yield
        return
    os.environ["PYSPARK_PYTHON"] = sys.executable
    try:
        yield
    finally:
        del os.environ["PYSPARK_PYTHON"]


def under_spark_submit() -> bool:
    """True when spark-submit launched this Python process (the JVM is already running)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _user_driver_java_options() -> bool:
    """True when the user gave the driver JVM options that a launched driver would pick up.

    Looked for in `PYSPARK_SUBMIT_ARGS` and in `spark-defaults.conf` (`SPARK_CONF_DIR`, else
    `$SPARK_HOME/conf`, else pyspark's own `conf/`).
    """
    submit_args = os.environ.get("PYSPARK_SUBMIT_ARGS", "")
    if "--driver-java-options" in submit_args or "spark.driver.extraJavaOptions" in submit_args:
        return True
    conf_dir = os.environ.get("SPARK_CONF_DIR")
    if conf_dir is None:
        import pyspark

        home = os.environ.get("SPARK_HOME") or str(Path(pyspark.__file__).parent)
        conf_dir = os.path.join(home, "conf")
    try:
        defaults = (Path(conf_dir) / "spark-defaults.conf").read_text()
    except OSError:
        return False
    return _DRIVER_JAVA_OPTIONS.search(defaults) is not None


def short_job_options_apply(master: str) -> bool:
    """Whether a short job's driver on `master` gets `SHORT_JOB_JAVA_OPTIONS` (C1, serial GC).

    Only a local master (the driver JVM does all the work, and the evidence is local), and
    never over driver JVM options the user set: `spark.driver.extraJavaOptions` given here
    would replace theirs.
    """
    if under_spark_submit():  # spark-submit launched the driver JVM already
        return False
    return is_local(master) and not _user_driver_java_options()


def get_spark(
    master: str | None = None, app_name: str = "velox", *, short_job: bool = False
) -> SparkSession:
    """The active Spark session, or a new one on `master` (default local[*]), logging at WARN.

    Under spark-submit `master=None` keeps the master and every `--conf` given on its command
    line; local masters get a few shuffle partitions unless the user chose a number. A local
    driver that this process launches for a short job (`short_job`) compiles with C1 only and
    collects with the serial GC, unless the user gave driver JVM options; an existing session
    or a driver that spark-submit started keeps its JVM as it is (its flags are fixed at
    launch). A new local context's Python workers run this interpreter; a new context on a
    cluster gets Velox's packages shipped and checked on its executors (`batch.ship_package`).
    A bad or unreachable master raises `SparkClusterError` before anything starts.
    """
    from pyspark.sql import SparkSession

    from batch.ship_package import check_executors, ship_packages

    started = not session_exists()
    # None: spark-submit launched this driver and its --master stands.
    chosen = master if master is not None or under_spark_submit() else DEFAULT_MASTER
    # Applied while the context starts, so even its start-up chatter stays at WARN.
    builder = SparkSession.builder.appName(app_name).config("spark.log.level", "WARN")
    if chosen is not None:
        if started:
            check_master(chosen)
        builder = builder.master(chosen)
        for key, value in LAUNCH_CONF.items():
            builder = builder.config(key, value)
        if is_local(chosen):
            # A local job serves nothing to other hosts: driver and UI listen on loopback only.
            builder = builder.config("spark.driver.bindAddress", "127.0.0.1")
            builder = builder.config("spark.driver.host", "127.0.0.1")
            # The web UI binds to SPARK_LOCAL_IP (all interfaces without it), read at launch.
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        if "SPARK_DRIVER_MEMORY" not in os.environ:
            builder = builder.config("spark.driver.memory", DEFAULT_DRIVER_MEMORY)
        if short_job and short_job_options_apply(chosen):
            builder = builder.config("spark.driver.extraJavaOptions", SHORT_JOB_JAVA_OPTIONS)
    with _workers_run_this_python(chosen):
        session = builder.getOrCreate()
    context = session.sparkContext
    if started and not is_local(context.master or ""):
        ship_packages(context)
        check_executors(context)
    context.setLogLevel("WARN")
    defaults = dict(SESSION_CONF)
    if is_local(context.master or ""):
        defaults.update(LOCAL_SESSION_CONF)
        defaults["spark.sql.shuffle.partitions"] = str(context.defaultParallelism)
    given = context.getConf()
    for key, value in defaults.items():
        if not given.contains(key):
            session.conf.set(key, value)
    return session


def session_exists() -> bool:
    """True when this process already has a Spark session (in any thread)."""
    from pyspark.errors import PySparkRuntimeError
    from pyspark.sql import SparkSession

    try:
        SparkSession.active()
    except PySparkRuntimeError:
        return False
    return True


def ui_address(session: SparkSession) -> str | None:
    """The Spark UI address of `session`, or None when the UI is disabled."""
    url: str | None = session.sparkContext.uiWebUrl
    return url
