"""Run one retrain cycle under the model's cycle lock and record how it ended.

Used by `velox scheduler` for every timed or drift-triggered cycle and by `velox retrain` for
a manual one, so that a manual cycle never overlaps a scheduled one either.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.exceptions import RedisError

from batch.errors import GateRejectedError
from batch.redis_client import SyncRedis
from jobs.cycle_lock import CycleLock, Lease
from jobs.cycle_log import CycleLog, CycleRecord, Outcome
from jobs.errors import CycleBusyError
from velox.errors import VeloxError

log = logging.getLogger("velox.jobs.cycles")


@dataclass(frozen=True)
class CycleResult:
    """What a cycle reports back: the version it published, whether it promoted it, and how
    many log entries it drained."""

    version: int | None
    promoted: bool = False
    drained: int = 0
    detail: str = ""


Cycle = Callable[[Lease], CycleResult]
"""One retrain cycle; it runs while the lease is held and must `lease.check()` before promoting."""


class CycleRunner:
    """Runs `cycle` for `model` under the cycle lock; every outcome is counted and logged."""

    def __init__(
        self,
        client: SyncRedis,
        model: str,
        cycle: Cycle,
        *,
        lock_ttl_s: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.model = model
        self.cycle = cycle
        self.clock = clock
        self.lock = CycleLock(client, model, ttl_s=lock_ttl_s)
        self.log = CycleLog(client, model)

    def run(self, trigger: str) -> CycleRecord:
        """Run one cycle now (BUSY if another process runs one) and record its outcome.

        A cycle that fails with a Velox, file-system or Redis error is recorded as FAILED and
        the caller carries on (a scheduler must outlive one bad cycle); anything else is a bug
        and propagates.
        """
        started_at = self.clock().isoformat()
        started = time.monotonic()
        result = CycleResult(version=None)
        try:
            with self.lock.held() as lease:
                result = self.cycle(lease)
            outcome = Outcome.PROMOTED if result.promoted else Outcome.PUBLISHED
            detail = result.detail
        except CycleBusyError as error:
            outcome, detail = Outcome.BUSY, error.message
        except GateRejectedError as error:
            outcome, detail = Outcome.REJECTED, error.message
        except (VeloxError, OSError, RedisError) as error:
            log.exception("retrain cycle of %s failed", self.model)
            outcome, detail = Outcome.FAILED, f"{type(error).__name__}: {error}"
        record = CycleRecord(
            trigger=trigger,
            outcome=outcome,
            started_at=started_at,
            seconds=round(time.monotonic() - started, 3),
            version=result.version,
            drained=result.drained,
            detail=detail,
        )
        self.log.record(record)
        return record
