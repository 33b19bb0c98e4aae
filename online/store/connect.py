"""The Redis client a URL asks for: `RespClient` for one node, `ClusterClient` for a cluster."""

from __future__ import annotations

import asyncio

from online.errors import ServiceError
from online.resp_client import PipelineClient, RedisAddress, RespClient
from online.store.cluster_client import ClusterClient
from velox.errors import InvalidInputError
from velox.redis_url import ClusterUrl, is_cluster_url


def connect(url: str, *, timeout_s: float) -> PipelineClient:
    """A client of `url` (`redis+cluster://h:p,h:p` names a cluster); connects lazily."""
    if is_cluster_url(url):
        try:
            return ClusterClient(ClusterUrl.parse(url), timeout_s=timeout_s)
        except InvalidInputError as error:
            raise ServiceError(error.message) from None
    return RespClient(RedisAddress.from_url(url), timeout_s=timeout_s)


def check_cluster(url: str | None, *, timeout_s: float) -> None:
    """For a cluster URL, ServiceError (one line) unless the cluster serves every slot and
    every master answers; `velox serve` calls it before binding. Other URLs pass."""
    if url is None or not is_cluster_url(url):
        return

    async def problem() -> str | None:
        client = connect(url, timeout_s=timeout_s)
        try:
            return await client.unavailable()
        finally:
            await client.close()

    found = asyncio.run(problem())
    if found is not None:
        raise ServiceError(f"not serving: {found}")
