"""The Redis weight store (layout: docs/redis_layout.md, keys: `online.redis_keys`).

Round trips. /predict: one pipeline (GET state [+ SMEMBERS seen]). /observe: one pipeline
(GET state, ZSCORE event id [, HGET propensity]) and one Lua script that re-checks the event id,
compares the state's 8-byte sequence header with the one that was read, and only then writes
the new state, appends the event to the log partition, and records the event id, the seen item
and the stream id. A conflict returns the current value, so a retry needs no new read.

Why a Lua compare-and-set and not WATCH/MULTI: WATCH pins a connection per user update (no
multiplexing), costs a round trip more (WATCH, GET, MULTI..EXEC) and under contention fails
the whole transaction after the work was shipped; bench/bench_observe_cas.py measures both.
The script is sent by EVALSHA (EVAL once after a Redis restart or SCRIPT FLUSH).

Within one process the updates of one user are serialized by a `KeyedLock`, so CAS conflicts
only happen between processes (uvicorn workers, replicas); they are retried by an injected
`Retry` (redis-py's policy object) with a small jittered backoff. Connection losses and
timeouts are retried by a second injected `Retry`; a retried script is idempotent because the
event id is checked inside it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from importlib.resources import files
from typing import Any

import hiredis
import orjson
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff, ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

from online.errors import ServiceError, StoreUnavailableError
from online.keyed_lock import KeyedLock
from online.redis_keys import UserKeys
from online.resp_client import RedisAddress, RespClient
from online.weight_store import (
    Decision,
    FeedbackEvent,
    LoggedEvent,
    ObserveOutcome,
    ObserveStatus,
    RedisStoreConfig,
    StateUpdate,
    UserRead,
    WeightStore,
)

OBSERVE_SCRIPT = files("online").joinpath("observe.lua").read_bytes()
OBSERVE_SHA = hashlib.sha1(OBSERVE_SCRIPT, usedforsecurity=False).hexdigest()
HEADER = struct.Struct(">Q")
"""The 8-byte big-endian sequence number in front of every stored state."""


def default_connection_retry(retries: int) -> Retry:
    """Retry lost connections and timeouts a few times, backing off up to half a second."""
    backoff = ExponentialWithJitterBackoff(base=0.01, cap=0.5)
    return Retry(backoff, retries, supported_errors=(RedisConnectionError, RedisTimeoutError))


def default_conflict_retry() -> Retry:
    """Retry lost compare-and-set races quickly; jitter breaks ties between replicas."""
    return Retry(EqualJitterBackoff(base=0.0001, cap=0.002), 1000, supported_errors=(WatchError,))


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _check(reply: Any) -> Any:
    if isinstance(reply, hiredis.ReplyError):
        raise ServiceError(f"Redis refused a command: {reply}")
    return reply


class _Attempt:
    """The mutable state of one observe across CAS retries."""

    __slots__ = ("current", "maybe_applied", "propensity", "read_done", "script_sent", "tries")

    def __init__(self) -> None:
        self.read_done = False
        self.current: bytes | None = None
        self.propensity: float | None = None
        self.script_sent = False
        self.maybe_applied = False
        self.tries = 0

    def seen_before(self) -> ObserveOutcome:
        """The event id is already recorded: ours if a script of this call may have run."""
        if self.maybe_applied:
            return ObserveOutcome(
                ObserveStatus.APPLIED, propensity=self.propensity, attempts=self.tries
            )
        return ObserveOutcome(ObserveStatus.DUPLICATE, attempts=self.tries)


class RedisWeightStore(WeightStore):
    """Weight store and feedback log in one Redis (or a Redis Cluster node per hash slot)."""

    def __init__(
        self,
        config: RedisStoreConfig,
        *,
        connection_retry: Retry | None = None,
        conflict_retry: Retry | None = None,
    ) -> None:
        self.config = config
        self.client = RespClient(RedisAddress.from_url(config.url), timeout_s=config.timeout_s)
        self._connection_retry = connection_retry or default_connection_retry(config.retries)
        self._conflict_retry = conflict_retry or default_conflict_retry()
        self._locks = KeyedLock()

    async def _pipeline(self, commands: Sequence[Sequence[str | bytes | int]]) -> list[Any]:
        async def fail(_: Exception) -> None:
            return None

        try:
            return await self._connection_retry.call_with_retry(
                lambda: self.client.pipeline(commands), fail
            )
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise StoreUnavailableError(f"Redis is unavailable: {error}") from error

    async def read(self, model: str, version: int, user: str, *, with_seen: bool) -> UserRead:
        """One round trip: GET the state and, if asked, SMEMBERS the seen set."""
        keys = UserKeys.of(model, user)
        if with_seen:
            value, seen = await self._pipeline(
                [("GET", keys.state(version)), ("SMEMBERS", keys.seen)]
            )
            return UserRead(state=_body(_check(value)), seen=_check(seen))
        (value,) = await self._pipeline([("GET", keys.state(version))])
        return UserRead(state=_body(_check(value)))

    async def observe(
        self, model: str, version: int, event: FeedbackEvent, update: StateUpdate
    ) -> ObserveOutcome:
        """Read, update, compare-and-set (see the module docstring), serialized per user."""
        keys = UserKeys.of(model, event.user)
        attempt = _Attempt()

        async def once() -> ObserveOutcome:
            return await self._try_observe(keys, version, event, update, attempt)

        async def on_conflict(_: Exception) -> None:
            return None

        async def on_connection_error(_: Exception) -> None:
            # The script may have run before the connection broke: read again, and let the
            # event id (checked in the read and in the script) tell whether it did.
            attempt.read_done = False
            attempt.maybe_applied = attempt.maybe_applied or attempt.script_sent

        async with self._locks.hold(keys.prefix):
            try:
                return await self._connection_retry.call_with_retry(
                    lambda: self._conflict_retry.call_with_retry(once, on_conflict),
                    on_connection_error,
                )
            except (RedisConnectionError, RedisTimeoutError) as error:
                raise StoreUnavailableError(f"Redis is unavailable: {error}") from error
            except WatchError as error:
                raise StoreUnavailableError(
                    f"user {event.user!r} is updated too often to commit ({attempt.tries} tries)"
                ) from error

    async def _try_observe(
        self,
        keys: UserKeys,
        version: int,
        event: FeedbackEvent,
        update: StateUpdate,
        attempt: _Attempt,
    ) -> ObserveOutcome:
        attempt.tries += 1
        state_key = keys.state(version)
        if not attempt.read_done:
            commands: list[tuple[str, ...]] = [
                ("GET", state_key),
                ("ZSCORE", keys.event_ids, event.event_id),
            ]
            if event.prediction_id:
                commands.append(("HGET", keys.prediction(event.prediction_id), event.item))
            replies = [_check(reply) for reply in await self.client.pipeline(commands)]
            if replies[1] is not None:
                return attempt.seen_before()
            attempt.current = replies[0]
            attempt.propensity = float(replies[2]) if len(replies) > 2 and replies[2] else None
            attempt.read_done = True
        current = attempt.current
        expected = current[:8] if current is not None else b""
        sequence = HEADER.unpack(expected)[0] if current is not None else 0
        state = update(current[8:] if current is not None else None)
        args = (
            expected,
            HEADER.pack(sequence + 1) + state,
            event.event_id,
            event.user,
            event.item,
            repr(float(event.reward)),
            str(event.timestamp_us),
            event.prediction_id or "",
            repr(attempt.propensity) if attempt.propensity is not None else "",
            self.config.dedupe_window,
            self.config.recent_events,
        )
        script_keys = (state_key, keys.seen, keys.event_ids, keys.events, keys.recent)
        attempt.script_sent = True
        reply = await self._run_observe_script(script_keys, args)
        outcome = reply[0]
        if outcome == b"ok":
            return ObserveOutcome(
                ObserveStatus.APPLIED,
                log_id=_text(reply[1]),
                state=state,
                propensity=attempt.propensity,
                attempts=attempt.tries,
            )
        if outcome == b"dup":
            return attempt.seen_before()
        attempt.current = reply[1] if len(reply) > 1 else None
        raise WatchError(f"state of {keys.user!r} changed since it was read")

    async def _run_observe_script(
        self, keys: Sequence[str], args: Sequence[str | bytes | int]
    ) -> list[Any]:
        (reply,) = await self.client.pipeline([("EVALSHA", OBSERVE_SHA, len(keys), *keys, *args)])
        if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
            (reply,) = await self.client.pipeline(
                [("EVAL", OBSERVE_SCRIPT, len(keys), *keys, *args)]
            )
        result: list[Any] = _check(reply)
        return result

    def log_decision(self, model: str, decision: Decision) -> None:
        """XADD the decision log partition, HSET item -> propensity with a TTL; no waiting."""
        keys = UserKeys.of(model, decision.user)
        key = keys.prediction(decision.prediction_id)
        fields: list[str] = []
        for item, propensity in zip(decision.items, decision.propensities, strict=True):
            fields += (item, repr(propensity))
        commands: list[tuple[str | bytes | int, ...]] = [
            ("HSET", key, *fields),
            ("EXPIRE", key, self.config.prediction_ttl_s),
        ]
        if self.config.decision_log_maxlen:
            entry = (
                "prediction_id", decision.prediction_id,
                "user_id", decision.user,
                "version", decision.version,
                "policy", decision.policy,
                "timestamp", decision.timestamp_us,
                "items", orjson.dumps(list(decision.items)),
                "propensities", orjson.dumps(list(decision.propensities)),
            )  # fmt: skip
            maxlen = ("MAXLEN", "~", self.config.decision_log_maxlen)
            commands.append(("XADD", keys.decisions, *maxlen, "*", *entry))
        self.client.send_nowait(commands)

    async def recent_events(self, model: str, user: str) -> list[LoggedEvent]:
        """LRANGE the user's recent stream ids, then XRANGE each of them (two round trips)."""
        keys = UserKeys.of(model, user)
        (ids,) = await self._pipeline([("LRANGE", keys.recent, 0, -1)])
        if not ids:
            return []
        replies = await self._pipeline([("XRANGE", keys.events, i, i) for i in _check(ids)])
        events: list[LoggedEvent] = []
        for reply in replies:
            for log_id, flat in _check(reply):
                fields = {_text(k): _text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}
                events.append(_logged_event(_text(log_id), fields))
        return events

    async def ping(self) -> bool:
        """PING through the connection retry policy."""
        try:
            (reply,) = await self._pipeline([("PING",)])
        except StoreUnavailableError:
            return False
        return bool(reply == b"PONG")

    async def close(self) -> None:
        """Close the connection."""
        await self.client.close()


def _body(value: bytes | None) -> bytes | None:
    return value[8:] if value is not None else None


def _logged_event(log_id: str, fields: dict[str, str]) -> LoggedEvent:
    event = FeedbackEvent(
        event_id=fields["event_id"],
        user=fields["user_id"],
        item=fields["item_id"],
        reward=float(fields["reward"]),
        timestamp_us=int(fields["timestamp"]),
        prediction_id=fields["prediction_id"] or None,
    )
    propensity = float(fields["propensity"]) if fields["propensity"] else None
    return LoggedEvent(log_id=log_id, event=event, propensity=propensity)
