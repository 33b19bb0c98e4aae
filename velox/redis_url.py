"""Redis Cluster URLs: `redis+cluster://[user:pass@]host:port[,host:port...]`, `rediss+cluster`.

One URL names a whole cluster by some of its nodes (the seeds); the clients learn every other
node and which one owns which hash slot from the cluster itself. A cluster has only database 0,
so a `/db` other than 0 is refused. Parsed here, with no Redis library, so that the settings
and the CLI can reject a bad URL with one clear message before anything connects; redis-py is
imported only by `sync_client`, the synchronous client of the drain, the jobs and the service's
item store (the service's hot path has its own, `online.store.cluster_client`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from velox.errors import InvalidInputError

if TYPE_CHECKING:
    from redis import Redis
    from redis.cluster import RedisCluster

CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}
"""Scheme -> TLS."""

DEFAULT_PORT = 6379


def is_cluster_url(url: str) -> bool:
    """True if `url` names a Redis Cluster (its scheme is one of `CLUSTER_SCHEMES`)."""
    return url.partition("://")[0] in CLUSTER_SCHEMES


@dataclass(frozen=True)
class ClusterUrl:
    """The seed nodes of a Redis Cluster and how to log in to every node."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> ClusterUrl:
        """Parse a cluster URL; InvalidInputError saying what is wrong otherwise."""
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in CLUSTER_SCHEMES:
            raise InvalidInputError(
                f"a Redis Cluster URL starts with redis+cluster:// or rediss+cluster://: {url!r}"
            )
        netloc, _, path = rest.partition("/")
        if path.partition("?")[0] not in ("", "0"):
            raise InvalidInputError(f"a Redis Cluster has only database 0, not /{path}: {url!r}")
        credentials, at, hosts = netloc.rpartition("@")
        username = password = None
        if at:
            user, colon, secret = credentials.partition(":")
            username = unquote(user) if user and colon else None
            password = unquote(secret if colon else user) or None
        nodes = tuple(_node(part, url) for part in hosts.split(","))
        return cls(nodes, username, password, CLUSTER_SCHEMES[scheme])


def sync_client(url: str, *, timeout_s: float = 5.0) -> Redis | RedisCluster:
    """redis-py's client of `url`: `RedisCluster` for a cluster URL (it connects now and raises
    redis-py's error if no seed answers), else `Redis` (connects on first use)."""
    import redis
    from redis.cluster import ClusterNode, RedisCluster

    if not is_cluster_url(url):
        return redis.Redis.from_url(url, socket_timeout=timeout_s)
    parsed = ClusterUrl.parse(url)
    nodes = [ClusterNode(host, port) for host, port in parsed.nodes]  # type: ignore[no-untyped-call]
    return RedisCluster(
        startup_nodes=nodes,
        username=parsed.username,
        password=parsed.password,
        ssl=parsed.tls,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )


def _node(text: str, url: str) -> tuple[str, int]:
    """`host[:port]` (an IPv6 host in brackets) as (host, port)."""
    if text.startswith("["):
        host, _, after = text[1:].partition("]")
        port_text = after.removeprefix(":")
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise InvalidInputError(f"a node of the Redis Cluster URL {url!r} has no host")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidInputError(f"node {text!r} of the Redis Cluster URL {url!r} has a bad port")
    return host, int(port_text)
