"""A local Spark job's web UI listens on loopback only, as quickstart's printed 127.0.0.1
address says (issue 23, item 8)."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession

LISTEN = "0A"
LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def listeners(port: int) -> list[str]:
    """The hex local addresses of the TCP sockets listening on `port` (IPv4 and IPv6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == LISTEN and int(hex_port, 16) == port:
                found.append(address)
    return found


def test_the_spark_ui_listens_on_loopback_only(spark: SparkSession) -> None:
    """Every socket listening on the UI's port is bound to 127.0.0.1 (or ::1), none to all."""
    url = spark.sparkContext.uiWebUrl
    assert url is not None and url.startswith("http://127.0.0.1:")
    addresses = listeners(int(url.rsplit(":", 1)[1]))
    assert addresses, f"nothing listens on {url}"
    assert set(addresses) <= LOOPBACK, addresses
