"""Redis Cluster URLs: `redis+cluster://[user:pass@]host:port[,host:port...]`, `rediss+cluster`.

One URL names a whole cluster by some of its nodes (the seeds); the clients learn every other
node and which one owns which hash slot from the cluster itself. A cluster has only database 0,
so a `/db` other than 0 is refused. Parsed here, with no Redis library, so that the settings
and the CLI can reject a bad URL with one clear message before anything connects.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from velox.errors import InvalidInputError

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
