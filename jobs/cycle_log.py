"""Each retrain cycle's outcome, counted and logged in Redis (and in the process log).

Keys (per model): `velox:jobs:{M}:cycles`, a hash of counters by outcome, and
`velox:jobs:{M}:cycle_log`, a stream of the last `maxlen` cycle records (approximately
capped), readable with XREVRANGE or `CycleLog.recent`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import cast

from batch.redis_client import SyncRedis

log = logging.getLogger("velox.jobs.cycles")


class Outcome(StrEnum):
    """How a cycle ended."""

    PROMOTED = "promoted"  # a new version was published and made current
    PUBLISHED = "published"  # a new version was published, not promoted (as asked)
    REJECTED = "rejected"  # trained and evaluated, the gate kept the current version
    FAILED = "failed"  # an error stopped it (nothing was promoted)
    BUSY = "busy"  # another process held the cycle lock: skipped


@dataclass(frozen=True)
class CycleRecord:
    """One cycle: why it ran, how it ended, when, how long, what it drained and published."""

    trigger: str
    outcome: Outcome
    started_at: str
    seconds: float
    version: int | None = None
    drained: int = 0
    detail: str = ""

    def fields(self) -> dict[str, str]:
        """The record as string fields (the stream entry)."""
        return {k: "" if v is None else str(v) for k, v in asdict(self).items()}


def counters_key(model: str) -> str:
    """Hash of cycle counts by outcome."""
    return f"velox:jobs:{{{model}}}:cycles"


def records_key(model: str) -> str:
    """Stream of the latest cycle records."""
    return f"velox:jobs:{{{model}}}:cycle_log"


class CycleLog:
    """Counts and keeps the records of one model's cycles."""

    def __init__(self, client: SyncRedis, model: str, *, maxlen: int = 1000) -> None:
        self.client = client
        self.model = model
        self.maxlen = maxlen

    def record(self, record: CycleRecord) -> None:
        """Count the outcome, append the record (one round trip) and log it."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hincrby(counters_key(self.model), record.outcome.value, 1)
        pipe.xadd(records_key(self.model), record.fields(), maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
        pipe.execute()
        log.info(
            "retrain cycle of %s (%s): %s in %.1f s, version %s, %d drained %s",
            self.model, record.trigger, record.outcome.value, record.seconds,
            record.version, record.drained, record.detail,
        )  # fmt: skip

    def counts(self) -> dict[str, int]:
        """Cycles so far by outcome."""
        raw = cast(dict[bytes, bytes], self.client.hgetall(counters_key(self.model)))
        return {key.decode(): int(value) for key, value in raw.items()}

    def recent(self, count: int = 20) -> list[dict[str, str]]:
        """The last `count` records, newest first."""
        entries = self.client.xrevrange(records_key(self.model), count=count)
        return [
            {k.decode(): v.decode() for k, v in fields.items()}  # type: ignore[union-attr]
            for _, fields in entries  # type: ignore[union-attr]
        ]
