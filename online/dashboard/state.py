"""What the dashboard keeps in one worker: the traffic monitor and its own Redis connection.

The dashboard's reads (log samples, cycle records, the user count's SCAN) go over a
connection of their own, so their larger replies never queue in front of a hot request's
reply on the store's connection; every read is bounded (COUNT), none scans on a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from feature_store.score_tables.engine import ScoreEngine
from online.dashboard import providers
from online.dashboard.extensions import Extensions
from online.dashboard.traffic import TrafficMonitor
from online.redis_scripts import check
from online.resp_client import Command, PipelineClient
from online.service import Service
from online.store.connect import connect


class DashboardState:
    """Per-worker dashboard state, created with the app and started by its lifespan."""

    def __init__(self) -> None:
        """A monitor that times nothing yet and no Redis connection."""
        self.traffic = TrafficMonitor()
        self.extensions = Extensions()
        self._url: str | None = None
        self._client: PipelineClient | None = None
        self.caches: dict[str, Any] = {}
        """Per-module caches (OPE results, the user count's running pass), by module name."""

    def start(self, service: Service, redis_url: str, scores: ScoreEngine | None = None) -> None:
        """Start sampling traffic, provide the optional panels of the parts the service has
        (`scores`: its score-table engine); Redis is connected on first use."""
        self.connect(redis_url)
        self.traffic.start(service)
        self.extensions.register("items_online", providers.items_online)
        self.extensions.register("featurization", providers.featurization)
        if scores is not None:
            self.extensions.register("score_tables", providers.score_tables(scores))

    def connect(self, redis_url: str) -> None:
        """Read from the Redis at `redis_url` (connecting on the first read)."""
        self._url = redis_url

    async def redis(self, commands: Sequence[Command]) -> list[Any]:
        """One pipeline on the dashboard's connection; a Redis error reply raises."""
        if self._client is None:
            if self._url is None:
                raise RuntimeError("the dashboard was not started")
            # A cluster URL gets the cluster client: the logs' bounded reads are per partition
            # and follow the slot map (the user count's SCAN then counts one master's keys).
            self._client = connect(self._url, timeout_s=5.0)
        return [check(reply) for reply in await self._client.pipeline(commands)]

    async def stop(self) -> None:
        """Stop sampling and close the connection."""
        await self.traffic.stop()
        if self._client is not None:
            await self._client.close()
            self._client = None
