"""Child process of the lock tests: takes the cycle lock, prints its token, dies (SIGKILL).

Usage: python -m tests.jobs.hold_lock REDIS_URL MODEL TTL_S.
"""

from __future__ import annotations

import os
import signal
import sys

import redis

from jobs.cycle_lock import CycleLock


def main() -> None:
    """Hold the lock with a renewing lease, report the token, then die without releasing."""
    url, model, ttl_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
    lock = CycleLock(redis.Redis.from_url(url), model, ttl_s=ttl_s)
    with lock.held():
        print(lock.token, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main()
