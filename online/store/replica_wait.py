"""Acknowledge an /observe only once `wait_replicas` Redis replicas hold it (`WAIT`).

Replication is asynchronous: a master that dies before its replica got a write loses it.
The write and its `WAIT` go out together on a connection of their own (the "writer"), so that
reads never queue behind a WAIT. An event found already applied may have been written by a
client whose connection broke before its WAIT: a write on the writer moves this master's
replication offset past it (the partition's `replicated` counter), and WAIT then covers it
too. Fewer replicas in time is a 503 (`NotReplicatedError`): the write stands, and the
client's retry with the same event id is answered from it once replicated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from online.errors import NotReplicatedError
from online.redis_keys import UserKeys
from online.redis_scripts import Send, check
from online.resp_client import Command, PipelineClient
from online.store.connect import connect


class ReplicaWait:
    """The writer connection and the checks of `WAIT` replies (one per store)."""

    def __init__(self, url: str, timeout_s: float, replicas: int, timeout_ms: int) -> None:
        """Wait for `replicas` replicas, at most `timeout_ms` per write."""
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self._writer: PipelineClient = connect(url, timeout_s=timeout_s)

    def sender(self, counts: list[int]) -> Send:
        """A sender over the writer that appends `WAIT` and records its answer in `counts`."""
        writer, wait = self._writer, ("WAIT", self.replicas, self.timeout_ms)

        async def send(commands: Sequence[Command]) -> list[Any]:
            *replies, count = await writer.pipeline([*commands, wait])
            counts.append(count if isinstance(count, int) else 0)
            return replies

        return send

    async def confirm(self, keys: UserKeys) -> None:
        """Make sure what this master holds of the user is on the replicas (module doc)."""
        commands: list[Command] = [
            ("INCR", keys.replicated),
            ("WAIT", self.replicas, self.timeout_ms),
        ]
        counted, count = await self._writer.pipeline(commands)
        check(counted)
        self.check(count if isinstance(count, int) else 0, keys)

    def check(self, count: int, keys: UserKeys) -> None:
        """NotReplicatedError (a 503) unless `count` replicas acknowledged the write."""
        if count < self.replicas:
            raise NotReplicatedError(
                f"the observation of {keys.user!r} reached {count} of {self.replicas} Redis "
                f"replica(s) in {self.timeout_ms} ms; retry with the same event_id"
            )

    async def close(self) -> None:
        """Close the writer connection."""
        await self._writer.close()
