"""The Redis weight store (layout: docs/redis_layout.md, keys: `online.redis_keys`).

Round trips. /predict: one pipeline (MGET state applied, LINDEX recent -1 [+ SMEMBERS seen]).
/observe: one pipeline (the same MGET and LINDEX, ZSCORE event id [, GET shown items]) and one
Lua script that re-checks the event id, compares the state's 8-byte sequence header and the
user's last stream id with the ones that were read, and only then writes the new state and
its `applied` id, appends the event to the log partition, and records the event id, the seen
item and the stream id. A conflict returns the current value, so a retry needs no new read.
A user whose state lacks some of its logged events (first touch after a retrain, events
applied under another version) costs one more round trip: `catch_up.lua` reads the state
and the missing events together (online/rebase.py).

Why a Lua compare-and-set and not WATCH/MULTI: WATCH pins a connection per user update (no
multiplexing), costs a round trip more (WATCH, GET, MULTI..EXEC) and under contention fails
the whole transaction after the work was shipped; bench/bench_observe_cas.py measures both.
The script is sent by EVALSHA (EVAL once after a Redis restart or SCRIPT FLUSH).

Within one process the updates of one user are serialized by a `KeyedLock`, so CAS conflicts
only happen between processes (uvicorn workers, replicas); they are retried by an injected
`Retry` (redis-py's policy object) with a small jittered backoff. Connection losses and
timeouts are retried by a second injected `Retry`; a retried script is idempotent because the
event id is checked inside it.

A Redis Cluster (`redis+cluster://...`) is reached through `ClusterClient`, which sends every
pipeline to the master of its keys' slot (one hash tag per user: one node, one round trip).
With `wait_replicas` N > 0 an /observe is acknowledged only once N replicas have it
(online/store/replica_wait.py); fewer in time is a 503 and the write stands.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence
from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff, ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

from feature_store.log_cutoff import LOG_START, LogId
from online.errors import StoreUnavailableError
from online.keyed_lock import KeyedLock
from online.redis_decisions import REWARDED_GRACE_S, decision_commands, due_rewards, settle_reward
from online.redis_keys import UserKeys, online_error_key
from online.redis_scripts import (
    CATCH_UP,
    OBSERVE,
    REBASE,
    CaughtUp,
    Send,
    check,
    logged_event,
    optional_text,
    text,
)
from online.resp_client import PipelineClient
from online.store.connect import connect
from online.store.observe_attempt import ObserveAttempt, join_kind, shown_propensity
from online.store.replica_wait import ReplicaWait
from online.weight_store import (
    CatchUp,
    Decision,
    DueReward,
    FeedbackEvent,
    LoggedEvent,
    ObserveOutcome,
    ObserveStatus,
    RedisStoreConfig,
    StateUpdate,
    UserRead,
    WeightStore,
)

OBSERVE_SCRIPT, OBSERVE_SHA = OBSERVE.source, OBSERVE.sha
log = logging.getLogger("velox.online.store")
HEADER = struct.Struct(">Q")
"""The 8-byte big-endian sequence number in front of every stored state."""


def default_connection_retry(retries: int) -> Retry:
    """Retry lost connections and timeouts a few times, backing off up to half a second."""
    backoff = ExponentialWithJitterBackoff(base=0.01, cap=0.5)
    return Retry(backoff, retries, supported_errors=(RedisConnectionError, RedisTimeoutError))


def default_conflict_retry() -> Retry:
    """Retry lost compare-and-set races quickly; jitter breaks ties between replicas."""
    return Retry(EqualJitterBackoff(base=0.0001, cap=0.002), 1000, supported_errors=(WatchError,))


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
        self.client: PipelineClient = connect(config.url, timeout_s=config.timeout_s)
        self._replica_wait: ReplicaWait | None = None
        if config.wait_replicas:
            self._replica_wait = ReplicaWait(
                config.url, config.timeout_s, config.wait_replicas, config.wait_timeout_ms
            )
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
        """One round trip: MGET state and applied id, the user's last log id, [seen set]."""
        keys = UserKeys.of(model, user)
        commands: list[tuple[str | int, ...]] = [
            ("MGET", keys.state(version), keys.applied(version)),
            ("LINDEX", keys.recent, -1),
        ]
        if with_seen:
            commands.append(("SMEMBERS", keys.seen))
        replies = await self._pipeline(commands)
        value, applied = check(replies[0])
        return UserRead(
            state=_body(value),
            seen=check(replies[2]) if with_seen else (),
            applied=optional_text(applied),
            last=optional_text(check(replies[1])),
        )

    async def observe(
        self,
        model: str,
        version: int,
        event: FeedbackEvent,
        update: StateUpdate,
        *,
        cutoff: LogId = LOG_START,
        window_s: int | None = None,
    ) -> ObserveOutcome:
        """Read, update, compare-and-set (see the module docstring), serialized per user."""
        keys = UserKeys.of(model, event.user)
        attempt = ObserveAttempt(cutoff)
        # A joined reward is remembered only where a default reward may be owed (`window_s`).
        remember_s = str(window_s + REWARDED_GRACE_S) if window_s is not None else ""

        async def once() -> ObserveOutcome:
            return await self._try_observe(keys, version, event, update, attempt, remember_s)

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
        attempt: ObserveAttempt,
        remember_s: str,
    ) -> ObserveOutcome:
        attempt.tries += 1
        state_key, applied_key = keys.state(version), keys.applied(version)
        if not attempt.read_done:
            commands: list[tuple[str | int, ...]] = [
                ("MGET", state_key, applied_key),
                ("LINDEX", keys.recent, -1),
                ("ZSCORE", keys.event_ids, event.event_id),
            ]
            if event.prediction_id and not event.is_default:
                commands.append(("GET", keys.prediction(event.prediction_id)))
            replies = [check(reply) for reply in await self.client.pipeline(commands)]
            if replies[2] is not None:
                await self._confirm_replicated(keys)
                return attempt.seen_before()
            attempt.current, applied = replies[0]
            attempt.applied, attempt.last = optional_text(applied), optional_text(replies[1])
            attempt.missed = None
            attempt.propensity = (
                shown_propensity(replies[3], event.item)
                if len(replies) > 3
                else event.default_propensity
            )
            attempt.read_done = True
        if attempt.missed is None:
            read = UserRead(attempt.current, applied=attempt.applied, last=attempt.last)
            if read.is_current(attempt.cutoff):
                attempt.missed = []
            else:
                caught = await self._catch_up(keys, version, attempt.cutoff, self.client.pipeline)
                attempt.current, attempt.applied = caught.value, caught.applied
                attempt.last, attempt.missed = caught.last, caught.events
        current = attempt.current
        expected = current[:8] if current is not None else b""
        sequence = HEADER.unpack(expected)[0] if current is not None else 0
        base = current[8:] if current is not None and attempt.applied is not None else None
        change = update(base, attempt.missed)
        error = change.squared_error
        args = (
            expected,
            HEADER.pack(sequence + 1) + change.state,
            event.event_id,
            event.user,
            event.item,
            repr(float(event.reward)),
            str(event.timestamp_us),
            event.prediction_id or "",
            repr(attempt.propensity) if attempt.propensity is not None else "",
            self.config.dedupe_window,
            self.config.recent_events,
            attempt.last or "",
            repr(error) if error is not None else "",
            join_kind(event, attempt.propensity),
            remember_s,
        )
        script_keys = (
            *(state_key, keys.seen, keys.event_ids, keys.events, keys.recent, applied_key),
            online_error_key(keys.model, keys.partition, version),
            keys.rewarded(event.prediction_id or ""),
        )
        attempt.script_sent = True
        replicas: list[int] = []
        wait = self._replica_wait
        send = self.client.pipeline if wait is None else wait.sender(replicas)
        reply = await OBSERVE.run(send, script_keys, args)
        outcome = reply[0]
        if outcome == b"ok":
            if wait is not None:
                wait.check(replicas[-1] if replicas else 0, keys)
            return ObserveOutcome(
                ObserveStatus.APPLIED,
                log_id=text(reply[1]),
                state=change.state,
                propensity=attempt.propensity,
                attempts=attempt.tries,
            )
        if outcome == b"dup":
            await self._confirm_replicated(keys)
            return attempt.seen_before()
        if outcome == b"rewarded":
            return ObserveOutcome(ObserveStatus.REWARDED, attempts=attempt.tries)
        attempt.current = reply[1]
        attempt.applied, attempt.last = optional_text(reply[2]), optional_text(reply[3])
        attempt.missed = None
        raise WatchError(f"state of {keys.user!r} changed since it was read")

    async def _confirm_replicated(self, keys: UserKeys) -> None:
        """With `wait_replicas`, make sure an event found applied is on the replicas too."""
        if self._replica_wait is not None:
            await self._replica_wait.confirm(keys)

    async def _catch_up(self, keys: UserKeys, version: int, cutoff: LogId, send: Send) -> CaughtUp:
        script_keys = (keys.state(version), keys.applied(version), keys.recent, keys.events)
        caught = CaughtUp.parse(await CATCH_UP.run(send, script_keys, (str(cutoff),)))
        if caught.missing:
            # Only a rollback past the versions the drain keeps replayable gets here.
            log.warning(
                "rebasing %r onto v%d: %d of its events were already trimmed from the log",
                keys.user, version, caught.missing,
            )  # fmt: skip
        return caught

    async def catch_up(self, model: str, version: int, user: str, cutoff: LogId) -> CatchUp:
        """The state and the user's logged events it lacks, read by one script."""
        keys = UserKeys.of(model, user)
        caught = await self._catch_up(keys, version, cutoff, self._pipeline)
        value = caught.value
        state = value[8:] if value is not None and caught.applied is not None else None
        token = (value[:8] if value is not None else b"", caught.last or "")
        return CatchUp(state=state, events=caught.events, token=token, missing=caught.missing)

    def save_rebased(
        self, model: str, version: int, user: str, read: CatchUp, state: bytes
    ) -> None:
        """Compare-and-set the rebased state and its applied id (rebase.lua), no waiting."""
        keys = UserKeys.of(model, user)
        header, last = read.token
        sequence = HEADER.unpack(header)[0] if header else 0
        value = HEADER.pack(sequence + 1) + state
        script_keys = (keys.state(version), keys.applied(version), keys.recent)
        self.client.send_nowait(
            [("EVAL", REBASE.source, len(script_keys), *script_keys, header, last, value, last)]
        )

    def log_decision(self, model: str, decision: Decision) -> None:
        """Record a /predict answer (`online.redis_decisions`); no waiting."""
        commands = decision_commands(model, decision, self.config.decision_log_maxlen)
        self.client.send_nowait(commands)

    async def due_rewards(self, model: str, now_ms: int, limit: int) -> list[DueReward]:
        """Answers whose reward window closed by `now_ms` with defaults owed (one round trip)."""
        return await due_rewards(self._pipeline, model, now_ms, limit)

    async def settle_reward(self, model: str, due: DueReward) -> None:
        """Forget a due answer whose default rewards are applied."""
        await settle_reward(self._pipeline, model, due)

    async def recent_events(self, model: str, user: str) -> list[LoggedEvent]:
        """LRANGE the user's recent stream ids, then XRANGE each of them (two round trips)."""
        keys = UserKeys.of(model, user)
        (ids,) = await self._pipeline([("LRANGE", keys.recent, 0, -1)])
        if not ids:
            return []
        replies = await self._pipeline([("XRANGE", keys.events, i, i) for i in check(ids)])
        events: list[LoggedEvent] = []
        for reply in replies:
            for log_id, flat in check(reply):
                events.append(logged_event(text(log_id), flat))
        return events

    async def ping(self) -> bool:
        """PING through the connection retry policy."""
        try:
            (reply,) = await self._pipeline([("PING",)])
        except StoreUnavailableError:
            return False
        return bool(reply == b"PONG")

    async def unavailable(self) -> str | None:
        """None if Redis serves (a cluster: every slot, every master answers), else why not."""
        return await self.client.unavailable()

    async def close(self) -> None:
        """Close the connections."""
        await self.client.close()
        if self._replica_wait is not None:
            await self._replica_wait.close()


def _body(value: bytes | None) -> bytes | None:
    return value[8:] if value is not None else None
