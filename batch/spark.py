"""The Spark session of a batch job: local[*] by default, any master URL unchanged."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[*]"

# Read at JVM launch, so they only apply when this process starts Spark itself.
LAUNCH_CONF: dict[str, str] = {
    "spark.ui.showConsoleProgress": "false",
}
DEFAULT_DRIVER_MEMORY = "2g"  # unless SPARK_DRIVER_MEMORY says otherwise
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


def get_spark(master: str | None = None, app_name: str = "velox") -> SparkSession:
    """The active Spark session, or a new one on `master` (default local[*]), logging at WARN.

    Under spark-submit `master=None` keeps the master and every `--conf` given on its command
    line; local masters get a few shuffle partitions unless the user chose a number.
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
