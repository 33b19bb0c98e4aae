"""Session-wide fixtures: one real redis-server and one local Spark session per test run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.redis_server import RedisServer

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this test run on a free port; tests flush what they use."""
    server = RedisServer(Path(tmp_path_factory.mktemp("redis")))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """The one local Spark session of this test run (local[2], WARN logging)."""
    from batch.spark import get_spark

    session = get_spark(master="local[2]", app_name="velox-tests")
    yield session
    session.stop()
