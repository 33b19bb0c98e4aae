"""The drain's ledger: per drained batch, its Parquet files and the stream-id ranges they hold.

`_ledger/<batch>.json` under a drain's root (batch/drain.py explains the protocol); the
highest `last` id over a partition's ledgers is how far that partition was drained. Also the
drain's errors and its durable-write helpers, shared by both modules.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from batch.errors import BatchError
from feature_store.log_cutoff import LogId

LEDGER_FORMAT = "velox-drain-ledger/1"


class DrainError(BatchError):
    """The drain cannot run or found its ledger inconsistent."""


class DrainBusyError(DrainError):
    """Another drain of the same root is running."""

    status = 409


Ranges = dict[int, tuple[LogId, LogId, int]]
"""Per stream partition: the first and last stream id of a batch and how many entries."""


@dataclass(frozen=True)
class BatchLedger:
    """The record of one drained batch: its files and the stream-id ranges they hold."""

    family: str
    model: str
    number: int
    rows: int
    files: list[str]
    ranges: Ranges

    def to_json(self) -> dict[str, object]:
        """The JSON object written to `_ledger/<batch>.json`."""
        partitions = {
            str(p): {"first": str(first), "last": str(last), "count": count}
            for p, (first, last, count) in sorted(self.ranges.items())
        }
        return {
            "format": LEDGER_FORMAT,
            "family": self.family,
            "model": self.model,
            "batch": self.number,
            "rows": self.rows,
            "files": self.files,
            "partitions": partitions,
        }

    @classmethod
    def read(cls, path: Path) -> BatchLedger:
        """Read a ledger file (DrainError if it is not one)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data["format"] != LEDGER_FORMAT:
                raise ValueError(f"unknown format {data['format']!r}")
            ranges = {
                int(p): (LogId.parse(r["first"]), LogId.parse(r["last"]), int(r["count"]))
                for p, r in data["partitions"].items()
            }
            files = [str(name) for name in data["files"]]
            return cls(
                data["family"], data["model"], int(data["batch"]), int(data["rows"]), files, ranges
            )
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise DrainError(f"unreadable drain ledger {path}: {error}") from error


def fsync_dir(path: Path) -> None:
    """fsync a directory, so that the names created or renamed in it are durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: object) -> None:
    """Write `data` to `path` atomically and durably (temp file, fsync, rename, fsync dir)."""
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    fsync_dir(path.parent)
