"""Child process of the drain crash tests: drains, and SIGKILLs itself at a named point.

Usage: python -m tests.jobs.crash_drain REDIS_URL ROOT POINT N. The fault is injected by
wrapping the calls the real drain makes (file writes, renames, XTRIM), so the code under test
is unchanged; the process dies at the N-th time it reaches POINT (batches are small, so a run
goes through each point several times).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from batch import drain

POINTS = (
    "staged-file",  # a batch file written and synced in _staging, its ledger not yet
    "before-record",  # every file of a batch staged, the staging ledger about to be renamed
    "recorded",  # the batch recorded (staging ledger renamed), nothing moved yet
    "mid-commit",  # one file of a recorded batch moved into place
    "before-ledger",  # files moved, the ledger about to move to _ledger/
    "mid-trim",  # one partition trimmed after a batch
)
BATCH_ENTRIES = 40


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _install(point: str, nth: int) -> None:
    reached = 0

    def count(here: bool) -> None:
        nonlocal reached
        if here:
            reached += 1
            if reached == nth:
                _die()

    real_replace = os.replace
    real_fsync = os.fsync
    real_xtrim = redis.Redis.xtrim

    def replace(source: Any, target: Any) -> None:
        target_path = Path(target)
        if point == "before-record":
            count(target_path.name == drain.LEDGER_NAME)
        if point == "before-ledger":
            count(target_path.parent.name == drain.LEDGER_DIR)
        real_replace(source, target)
        if point == "recorded":
            count(target_path.name == drain.LEDGER_NAME)
        if point == "mid-commit":
            count(target_path.suffix == ".parquet")

    def fsync(fd: int) -> None:
        real_fsync(fd)
        if point == "staged-file":
            count(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).endswith(".parquet"))

    def xtrim(self: redis.Redis, *args: Any, **kwargs: Any) -> Any:
        result = real_xtrim(self, *args, **kwargs)
        if point == "mid-trim":
            count(True)
        return result

    os.replace = replace  # type: ignore[assignment]
    os.fsync = fsync  # type: ignore[assignment]
    redis.Redis.xtrim = xtrim  # type: ignore[method-assign, assignment]


def run_drain(url: str, root: str, install: Callable[[], None] | None = None) -> None:
    """Drain model `m` of the Redis at `url` into `root` with small batches."""
    if install is not None:
        install()
    client = redis.Redis.from_url(url)
    drain.Drain(client, "m", Path(root), batch_entries=BATCH_ENTRIES, read_count=7).run()


def main() -> None:
    """Drain, dying at POINT the N-th time it is reached."""
    url, root, point, nth = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if point not in POINTS:
        raise SystemExit(f"unknown crash point {point!r}")
    run_drain(url, root, lambda: _install(point, nth))
    raise SystemExit("the drain finished: the crash point was never reached")


if __name__ == "__main__":
    main()
