"""The lean RESP client over a Redis Cluster: each command goes to the master of its key's slot.

Same interface as `RespClient` (`online.resp_client.PipelineClient`), one multiplexed
`RespClient` per node. A pipeline is cut into units, a command with a key and the keyless ones
after it (`WAIT` after a script rides with the script, to its node), and each unit is sent to
the master that the slot map names; the units of one node go out as one pipeline, the nodes'
pipelines at once. The service's per-user pipelines carry one hash tag, so they stay one round
trip to one node; `due_rewards` (64 partitions) fans out to every master in one round.

Redirects are followed inside `pipeline`: `MOVED` updates the slot's owner at once and refreshes
the whole map (CLUSTER SLOTS) in the background; `ASK` sends the unit once more to the importing
node after `ASKING`; `TRYAGAIN` (a multi-key command during a slot migration) is sent again
after a short sleep. `CLUSTERDOWN`, a lost node or a timeout marks the map stale and raises
redis-py's `ConnectionError`/`TimeoutError`, which the store's retry policy retries: the next
attempt refreshes the map first, so once a replica is promoted requests reach it with no
restart. Deferred commands (`send_nowait`) go to their slot's owner without redirects (best
effort, as on one node).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from online.errors import ServiceError
from online.resp_client import Command, RedisAddress, RespClient
from online.store.slots import SLOTS, Node, key_of, slot_of
from velox.redis_url import ClusterUrl

MAX_REDIRECTS = 16
"""MOVED answers followed per pipeline before giving up (a map that never settles); ASK and
TRYAGAIN (a slot migration under way) are followed until the client's timeout instead."""

TRYAGAIN_SLEEP_S = 0.01

Unit = tuple[int | None, list[int]]
"""A keyed command's slot (None: keyless) and its index with those of the keyless ones after it."""
ReplyError = hiredis.ReplyError


class ClusterClient:
    """Sends pipelines to the masters owning their keys' slots; follows MOVED, ASK, TRYAGAIN."""

    def __init__(self, url: ClusterUrl, *, timeout_s: float = 2.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._clients: dict[Node, RespClient] = {}
        self._owners: list[Node | None] = [None] * SLOTS
        self._masters: list[Node] = []
        self._known: list[Node] = list(url.nodes)
        self._stale = True
        self._generation = 0
        self._refreshing: asyncio.Lock | None = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def round_trips(self) -> int:
        """Pipelines sent and awaited so far, over every node."""
        return sum(client.round_trips for client in self._clients.values())

    def owner(self, slot: int) -> Node | None:
        """The master that the slot map says owns `slot` (None: not known yet)."""
        return self._owners[slot]

    async def pipeline(self, commands: Sequence[Command]) -> list[Any]:
        """Send `commands` to their slots' masters and return the replies in order."""
        if self._stale:
            await self.refresh()
        replies: list[Any] = [None] * len(commands)
        asked: dict[int, Node] = {}
        node = self._node_of_all(commands)
        if node is not None:  # one slot (one user): no units to build unless redirected
            client = self._clients.get(node) or self._client(node)
            try:
                answer = await client.pipeline(commands)
            except (RedisConnectionError, RedisTimeoutError):
                self._stale = True
                raise
            for reply in answer:
                if type(reply) is ReplyError:
                    break
            else:
                return answer
            units = _units(commands)
            todo = list(range(len(units)))
            todo, kinds = self._absorb([node], {node: todo}, [answer], units, asked, replies)
        else:
            units = _units(commands)
            todo, kinds = list(range(len(units))), set()
        moved, deadline = 0, time.monotonic() + self.timeout_s
        while todo:
            if "MOVED" in kinds:
                moved += 1
                if moved > MAX_REDIRECTS:
                    raise RedisConnectionError(
                        f"Redis Cluster kept redirecting after {MAX_REDIRECTS} tries"
                    )
            elif kinds and time.monotonic() > deadline:  # ASK or TRYAGAIN: a slot migration
                raise RedisTimeoutError(f"a slot migration lasted over {self.timeout_s} s")
            if "TRYAGAIN" in kinds:  # some of the keys moved, some not yet: wait for the rest
                await asyncio.sleep(TRYAGAIN_SLEEP_S)
            nodes, by_node = self._route(units, todo, asked)
            batches = [self._batch(commands, units, by_node[n], asked) for n in nodes]
            answers = await self._dispatch(nodes, batches)
            todo, kinds = self._absorb(nodes, by_node, answers, units, asked, replies)
        return replies

    async def execute(self, *command: str | bytes | int | float) -> Any:
        """Send one command and return its reply (an error reply is raised)."""
        (reply,) = await self.pipeline([command])
        if isinstance(reply, hiredis.ReplyError):
            raise ServiceError(f"Redis refused {command[0]!r}: {reply}")
        return reply

    def send_nowait(self, commands: Sequence[Command]) -> None:
        """Send one slot's `commands` later without waiting (best effort, no redirects)."""
        if self._stale or not commands:
            return
        key = next((k for k in map(key_of, commands) if k is not None), None)
        node = self._owners[slot_of(key)] if key is not None else self._any_master()
        if node is not None:
            self._client(node).send_nowait(commands)

    async def unavailable(self) -> str | None:
        """None if the cluster serves every slot and every master answers, else why not."""
        try:
            if self._stale:
                await self.refresh()
            info = await self.execute("CLUSTER", "INFO")
        except (RedisConnectionError, RedisTimeoutError, ServiceError) as error:
            return f"Redis Cluster {self._seeds()} is unavailable: {error}"
        state = _info_field(info, "cluster_state")
        if state != "ok":
            return f"Redis Cluster {self._seeds()} reports cluster_state:{state}"
        masters = list(self._masters)
        answers = await asyncio.gather(
            *[self._client(node).pipeline([("PING",)]) for node in masters],
            return_exceptions=True,
        )
        down = [f"{host}:{port}" for (host, port), a in zip(masters, answers, strict=True)
                if isinstance(a, BaseException)]  # fmt: skip
        if down:
            self._stale = True
            return f"Redis Cluster master(s) {', '.join(down)} do not answer"
        return None

    async def refresh(self) -> None:
        """Load the slot map (CLUSTER SLOTS) from the first node that answers."""
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        seen = self._generation
        async with self._refreshing:
            if self._generation != seen and not self._stale:
                return  # another caller refreshed while this one waited
            candidates = list(dict.fromkeys([*self._masters, *self._known]))
            random.shuffle(candidates)
            failures: list[str] = []
            for node in candidates:
                try:
                    reply = await self._client(node).execute("CLUSTER", "SLOTS")
                except (RedisConnectionError, RedisTimeoutError, ServiceError) as error:
                    failures.append(f"{node[0]}:{node[1]}: {error}")
                    continue
                self._install(reply, node)
                return
            self._stale = True
            raise RedisConnectionError(
                f"no node of the Redis Cluster {self._seeds()} answered: {'; '.join(failures)}"
            )

    async def close(self) -> None:
        """Close every node's connection."""
        for task in list(self._background):
            task.cancel()
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    def _install(self, reply: list[Any], asked: Node) -> None:
        owners: list[Node | None] = [None] * SLOTS
        masters: list[Node] = []
        for entry in reply:
            start, end, master, *replicas = entry
            node = _node(master, asked)
            masters.append(node)
            owners[start : end + 1] = [node] * (end - start + 1)
            for replica in replicas:
                self._known.append(_node(replica, asked))
        self._owners = owners
        self._masters = list(dict.fromkeys(masters))
        self._known = list(dict.fromkeys([*self._known, *self._masters]))
        self._generation += 1
        self._stale = False

    def _client(self, node: Node) -> RespClient:
        client = self._clients.get(node)
        if client is None:
            host, port = node
            url = self.url
            address = RedisAddress(host=host, port=port, tls=url.tls, username=url.username,
                                   password=url.password)  # fmt: skip
            client = self._clients[node] = RespClient(address, timeout_s=self.timeout_s)
        return client

    def _any_master(self) -> Node | None:
        return self._masters[0] if self._masters else None

    def _seeds(self) -> str:
        return ",".join(f"{host}:{port}" for host, port in self.url.nodes)

    def _refresh_soon(self) -> None:
        task = asyncio.get_running_loop().create_task(self._quiet_refresh())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _quiet_refresh(self) -> None:
        try:
            await self.refresh()
        except RedisConnectionError:
            self._stale = True

    def _node_of_all(self, commands: Sequence[Command]) -> Node | None:
        """The master of the one slot every keyed command is in (None: several, or unknown)."""
        slot = -1
        for command in commands:
            key = key_of(command)
            if key is not None:
                found = slot_of(key)
                if slot == -1:
                    slot = found
                elif found != slot:
                    return None
        return self._owners[slot] if slot != -1 else self._any_master()

    def _route(
        self, units: list[Unit], todo: list[int], asked: dict[int, Node]
    ) -> tuple[list[Node], dict[Node, list[int]]]:
        """The nodes the units `todo` go to now (an ASK target first, else the slot's owner)."""
        by_node: dict[Node, list[int]] = {}
        for unit in todo:
            slot = units[unit][0]
            node = asked.get(unit) or (self._owners[slot] if slot is not None else None)
            node = node or self._any_master()
            if node is None:
                self._stale = True
                raise RedisConnectionError(f"no master of the Redis Cluster owns slot {slot}")
            by_node.setdefault(node, []).append(unit)
        return list(by_node), by_node

    def _absorb(
        self,
        nodes: list[Node],
        by_node: dict[Node, list[int]],
        answers: list[list[Any]],
        units: list[Unit],
        asked: dict[int, Node],
        replies: list[Any],
    ) -> tuple[list[int], set[str]]:
        """Store the answered units' replies; returns the redirected units and the kinds of
        redirect (MOVED, ASK, TRYAGAIN) they got."""
        again: list[int] = []
        kinds: set[str] = set()
        for node, answer in zip(nodes, answers, strict=True):
            position = 0
            for unit in by_node[node]:
                if asked.pop(unit, None) is not None:
                    position += 1  # the ASKING reply
                slot, indexes = units[unit]
                unit_replies = answer[position : position + len(indexes)]
                position += len(indexes)
                kind = self._redirected(unit_replies[0], slot, node, unit, asked)
                if kind is not None:
                    kinds.add(kind)
                    again.append(unit)
                else:
                    for index, reply in zip(indexes, unit_replies, strict=True):
                        replies[index] = reply
        return again, kinds

    async def _dispatch(
        self, nodes: list[Node], batches: Sequence[Sequence[Command]]
    ) -> list[list[Any]]:
        """Send each node its batch, all at once; a lost node marks the map stale."""
        try:
            if len(nodes) == 1:  # the usual case (one user's keys): no task to create
                return [await self._client(nodes[0]).pipeline(batches[0])]
            sends = [self._client(n).pipeline(b) for n, b in zip(nodes, batches, strict=True)]
            answers = await asyncio.gather(*sends, return_exceptions=True)
            found: list[list[Any]] = []
            for answer in answers:
                if isinstance(answer, BaseException):
                    raise answer
                found.append(answer)
            return found
        except (RedisConnectionError, RedisTimeoutError):
            self._stale = True
            raise

    def _redirected(
        self, reply: Any, slot: int | None, node: Node, unit: int, asked: dict[int, Node]
    ) -> str | None:
        """The redirect `reply` asks for (MOVED: the map is updated, ASK: `asked`), or None."""
        redirect = _redirect(reply)
        if redirect is None:
            return None
        kind, target = redirect
        if kind == "MOVED":
            if slot is not None and target is not None:
                self._owners[slot] = _with_host(target, node)
            self._refresh_soon()
        elif kind == "ASK" and target is not None:
            asked[unit] = _with_host(target, node)
        elif kind != "TRYAGAIN":
            self._stale = True
            raise RedisConnectionError(f"Redis Cluster: {reply}")
        return kind

    def _batch(
        self,
        commands: Sequence[Command],
        units: list[Unit],
        chosen: list[int],
        asked: dict[int, Node],
    ) -> list[Command]:
        batch: list[Command] = []
        for unit in chosen:
            if unit in asked:
                batch.append(("ASKING",))
            batch.extend(commands[index] for index in units[unit][1])
        return batch


def _units(commands: Sequence[Command]) -> list[Unit]:
    """Each command with a key, with the keyless commands that follow it, and its slot."""
    units: list[Unit] = []
    for index, command in enumerate(commands):
        key = key_of(command)
        if key is None and units:
            units[-1][1].append(index)
        else:
            units.append((slot_of(key) if key is not None else None, [index]))
    return units


def _redirect(reply: Any) -> tuple[str, Node | None] | None:
    """(kind, target) for a MOVED/ASK/TRYAGAIN/CLUSTERDOWN error reply, else None."""
    if not isinstance(reply, hiredis.ReplyError):
        return None
    kind, _, rest = str(reply).partition(" ")
    if kind in ("MOVED", "ASK"):
        address = rest.partition(" ")[2]
        host, _, port = address.rpartition(":")
        return kind, (host, int(port)) if port.isdigit() else None
    if kind in ("TRYAGAIN", "CLUSTERDOWN"):
        return kind, None
    return None


def _with_host(target: Node, asked: Node) -> Node:
    """A redirect's node; an empty or unknown host means the host of the node asked."""
    host, port = target
    return (host if host and host != "?" else asked[0], port)


def _node(entry: Sequence[Any], asked: Node) -> Node:
    host = entry[0].decode() if isinstance(entry[0], bytes) else str(entry[0])
    return _with_host((host, int(entry[1])), asked)


def _info_field(info: Any, name: str) -> str:
    text = info.decode() if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        field, _, value = line.partition(":")
        if field == name:
            return value.strip()
    return "unknown"
