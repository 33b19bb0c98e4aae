"""The training cutoff in the feedback log: which logged events a snapshot's training saw.

The feedback log is partitioned (a model's events go to one Redis Stream per partition, see
docs/redis_layout.md) and ids only grow within a partition, so "the events training saw" is
exactly one position per partition: every entry at or before it was drained to Parquet and
trained on, none after it was. `manifest.training_cutoff` stores that list as JSON::

    {"format": "velox-log-cutoff/1", "positions": ["1732345200000-0", "0-0", ...]}

(one Redis stream id `<ms>-<seq>` per partition, `0-0` where nothing was drained). Online, a
user's posterior under the snapshot is its batch prior plus the user's logged events after
the position of the user's partition. A manifest without such a cutoff (None, or a time
written by a plain `velox train` on a dataset) saw no event of the log: every logged event
is after it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from feature_store.errors import SnapshotCorruptError

__all__ = ["CUTOFF_FORMAT", "LOG_START", "LogCutoff", "LogId"]

CUTOFF_FORMAT = "velox-log-cutoff/1"


class LogId(NamedTuple):
    """A Redis stream id `<ms>-<seq>`; tuples order exactly as Redis orders the ids."""

    ms: int
    seq: int

    @classmethod
    def parse(cls, text: str | bytes) -> LogId:
        """Parse `<ms>-<seq>` (ValueError on anything else)."""
        value = text.decode("ascii") if isinstance(text, bytes) else text
        ms, dash, seq = value.partition("-")
        if not dash or not ms.isdigit() or not seq.isdigit():
            raise ValueError(f"not a stream id: {value!r}")
        return cls(int(ms), int(seq))

    def successor(self) -> LogId:
        """The smallest id after this one (XTRIM MINID with it drops this id and all before)."""
        return LogId(self.ms, self.seq + 1)

    def __str__(self) -> str:
        """The Redis form `<ms>-<seq>`."""
        return f"{self.ms}-{self.seq}"


LOG_START = LogId(0, 0)
"""Before every entry: Redis never assigns 0-0 to an entry."""


@dataclass(frozen=True)
class LogCutoff:
    """Per partition, the last log entry included in training (`LOG_START`: none)."""

    positions: tuple[LogId, ...]

    @classmethod
    def start(cls, partitions: int) -> LogCutoff:
        """The cutoff of a snapshot that saw nothing of the log."""
        return cls((LOG_START,) * partitions)

    @classmethod
    def of(cls, positions: Sequence[LogId]) -> LogCutoff:
        """A cutoff from one position per partition."""
        return cls(tuple(positions))

    @classmethod
    def from_manifest(cls, value: str | None, partitions: int) -> LogCutoff:
        """The cutoff recorded in `manifest.training_cutoff` (see the module docstring)."""
        if value is None or not value.lstrip().startswith("{"):
            return cls.start(partitions)
        try:
            data = json.loads(value)
            if data.get("format") != CUTOFF_FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            cutoff = cls(tuple(LogId.parse(text) for text in data["positions"]))
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            message = f"unreadable training cutoff {value[:80]!r}: {error}"
            raise SnapshotCorruptError(message) from error
        if len(cutoff.positions) != partitions:
            raise SnapshotCorruptError(
                f"training cutoff has {len(cutoff.positions)} partitions, the log has {partitions}"
            )
        return cutoff

    def to_json(self) -> str:
        """The value to store in `manifest.training_cutoff`."""
        positions = [str(position) for position in self.positions]
        return json.dumps({"format": CUTOFF_FORMAT, "positions": positions})

    def includes(self, partition: int, log_id: LogId) -> bool:
        """True if the entry `log_id` of `partition` was part of training."""
        return log_id <= self.positions[partition]

    def lowest(self, other: LogCutoff) -> LogCutoff:
        """Per partition, the earlier of the two positions."""
        if len(other.positions) != len(self.positions):
            raise ValueError("cutoffs of logs with different partition counts")
        return LogCutoff(tuple(map(min, self.positions, other.positions)))
