"""The synchronous Redis client of the drain and the jobs, for any `VELOX_REDIS_URL`.

`redis://`, `rediss://`, `unix://`: redis-py's `Redis`. `redis+cluster://h:p[,h:p...]`
(`rediss+cluster://` with TLS): redis-py's `RedisCluster`, which follows MOVED/ASK and splits a
non-transactional pipeline per node. Everything the drain and the jobs send is single-key, a
script with keys of one hash tag, or a pipeline of such commands (the 64 log partitions of a
drain fan out over the masters), so both clients run the same code. The cluster is reached at
once: a wrong URL or no reachable node fails here with one line saying so.
"""

from __future__ import annotations

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisError

from batch.errors import BatchError
from velox.errors import InvalidInputError
from velox.redis_url import ClusterUrl, sync_client

SyncRedis = redis.Redis | RedisCluster
"""A client of one Redis or of a Redis Cluster (the same commands on both)."""


class RedisUnreachableError(BatchError):
    """The Redis (Cluster) of `VELOX_REDIS_URL` cannot be reached or its URL is wrong."""

    status = 503


def redis_client(url: str, *, timeout_s: float = 5.0) -> SyncRedis:
    """A client of `url` (`velox.redis_url.sync_client`); one clear error if it cannot be."""
    try:
        return sync_client(url, timeout_s=timeout_s)
    except InvalidInputError as error:
        raise RedisUnreachableError(error.message) from None
    except RedisError as error:
        seeds = ",".join(f"{host}:{port}" for host, port in ClusterUrl.parse(url).nodes)
        raise RedisUnreachableError(f"cannot reach the Redis Cluster {seeds}: {error}") from None
