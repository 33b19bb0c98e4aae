"""The Spark session of a batch job: local[*] by default, any master URL unchanged."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

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


def is_local(master: str) -> bool:
    """True for `local`, `local[N]` and `local[*]` masters."""
    return master == "local" or master.startswith("local[")


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
    launch).
    """
    from pyspark.sql import SparkSession

    # Applied while the context starts, so even its start-up chatter stays at WARN.
    builder = SparkSession.builder.appName(app_name).config("spark.log.level", "WARN")
    if master is not None or not under_spark_submit():
        builder = builder.master(master or DEFAULT_MASTER)
        for key, value in LAUNCH_CONF.items():
            builder = builder.config(key, value)
        if is_local(master or DEFAULT_MASTER):
            # A local job serves nothing to other hosts: driver and UI listen on loopback only.
            builder = builder.config("spark.driver.bindAddress", "127.0.0.1")
            builder = builder.config("spark.driver.host", "127.0.0.1")
        if "SPARK_DRIVER_MEMORY" not in os.environ:
            builder = builder.config("spark.driver.memory", DEFAULT_DRIVER_MEMORY)
        if short_job and short_job_options_apply(master or DEFAULT_MASTER):
            builder = builder.config("spark.driver.extraJavaOptions", SHORT_JOB_JAVA_OPTIONS)
    session = builder.getOrCreate()
    context = session.sparkContext
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
