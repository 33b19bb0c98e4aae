"""One retrain cycle at a time, across processes and machines: a Redis lock with a renewed TTL.

`SET key token NX PX ttl` takes the lock; a daemon thread of the holder renews it every third
of the TTL with a compare-and-PEXPIRE script, and the holder releases it with a
compare-and-DEL script, so only the token's owner can extend or free it. A holder that dies
(SIGKILL, lost machine) stops renewing and the key expires within one TTL; a holder that
fails to renew in time learns it from `Lease.lost` and must not publish (`Lease.check`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from batch.redis_client import SyncRedis
from jobs.errors import CycleBusyError, LockLostError

log = logging.getLogger("velox.jobs.lock")

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def cycle_lock_key(model: str) -> str:
    """The lock of `model`'s retrain cycle."""
    return f"velox:jobs:{{{model}}}:cycle_lock"


class Lease:
    """A held lock: renewed in the background until `release`."""

    def __init__(self, lock: CycleLock) -> None:
        self.lock = lock
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="cycle-lock", daemon=True)
        self._thread.start()

    @property
    def lost(self) -> bool:
        """True once a renewal found the lock gone or could not reach Redis within the TTL."""
        return self._lost.is_set()

    def check(self) -> None:
        """Raise LockLostError if the lock may be held by someone else by now."""
        if self.lost:
            raise LockLostError(f"lost the cycle lock of {self.lock.model!r}")

    def release(self) -> None:
        """Stop renewing and delete the key if it is still ours."""
        self._stop.set()
        self._thread.join()
        self.lock.release()

    def _renew(self) -> None:
        period = self.lock.ttl_ms / 3000.0
        failures = 0
        while not self._stop.wait(period):
            try:
                renewed = self.lock.renew()
            except (RedisConnectionError, RedisTimeoutError) as error:
                failures += 1
                log.warning("cannot renew the cycle lock: %s", error)
                renewed = failures < 3  # three misses add up to the whole TTL
            else:
                failures = 0
            if not renewed:
                self._lost.set()
                return


class CycleLock:
    """The cycle lock of one model; `token` names this holder (host, pid, random)."""

    def __init__(self, client: SyncRedis, model: str, *, ttl_s: float = 30.0) -> None:
        self.client = client
        self.model = model
        self.key = cycle_lock_key(model)
        self.ttl_ms = max(int(ttl_s * 1000), 300)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"

    def acquire(self) -> bool:
        """Take the lock if nobody holds it."""
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        """Extend the TTL if the lock is still ours."""
        return bool(self.client.eval(RENEW, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> None:
        """Delete the lock if it is still ours."""
        self.client.eval(RELEASE, 1, self.key, self.token)

    def holder(self) -> str | None:
        """The token of the current holder, if any."""
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    @contextmanager
    def held(self) -> Iterator[Lease]:
        """Hold the lock for the block (CycleBusyError if another holder has it)."""
        if not self.acquire():
            raise CycleBusyError(
                f"a retrain cycle of {self.model!r} is already running ({self.holder()})"
            )
        lease = Lease(self)
        try:
            yield lease
        finally:
            lease.release()
